"""Accounts: users, password plus TOTP two-step login, API tokens, rate limits."""
