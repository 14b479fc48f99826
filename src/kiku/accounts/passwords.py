"""Password hashing with argon2id; the parameters live in the hash, so they can change later."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~50 ms here, where argon2-cffi's
# default (64 MiB, 4 lanes) costs ~450 ms of a 2-core host's CPU per login. Old hashes still
# verify: their parameters are read from the hash itself.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Password must be at least {MIN_LENGTH} characters long."
    return None
