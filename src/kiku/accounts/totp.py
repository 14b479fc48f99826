"""TOTP (RFC 6238) second factor: 30-second steps, one step of drift allowed, no code reused."""

from __future__ import annotations

import hmac

import pyotp

STEP_SECONDS = 30
DRIFT_STEPS = 1
ISSUER = "kiku"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def code_at(secret: str, now: float) -> str:
    return pyotp.TOTP(secret).at(int(now))


def matching_step(secret: str, code: str, now: float, last_step: int | None) -> int | None:
    """The time step `code` belongs to, if it is valid now and newer than `last_step`.

    Returning the step lets the caller remember it, so a code seen once (by a shoulder
    surfer or a proxy log) cannot be replayed within its validity window.
    """
    code = code.strip().replace(" ", "")
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None
