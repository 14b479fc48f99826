"""Random secrets kiku hands out (API tokens, recovery codes) and how they are stored: hashed."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "HRKU-"
RECOVERY_CODE_COUNT = 10


def new_token() -> str:
    # Heroku's newer tokens look like HRKU-<random>; tools that sniff the prefix keep working.
    return TOKEN_PREFIX + secrets.token_hex(24)


def token_hint(token: str) -> str:
    return token[-6:]


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy secret: enough for lookup and safe to store (not for passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    return [secrets.token_hex(8) for _ in range(count)]


def normalize_recovery_code(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")
