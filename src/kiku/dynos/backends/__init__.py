"""Backends run dynos: `local` (sandboxed processes on this host), `fake` (for tests)."""
