"""Helpers shared by kiku's tests: a clock tests move, and logging in through the API."""

from __future__ import annotations

import pyotp
from starlette.testclient import TestClient

from kiku.accounts.accounts import Enrolment
from kiku.platform import Platform

ACCEPT = {"Accept": "application/vnd.heroku+json; version=3"}
PASSWORD = "correct horse battery"


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def signup(platform: Platform, email: str, password: str = PASSWORD) -> Enrolment:
    return platform.accounts.create_user(email, password)


def login(api: TestClient, enrolment: Enrolment, clock: FakeClock, password: str = PASSWORD) -> str:
    """Log in with password and a fresh TOTP code; answers the API token."""
    code = pyotp.TOTP(enrolment.totp_secret).at(int(clock()))
    response = api.post(
        "/oauth/authorizations",
        auth=(enrolment.user.email, password),
        headers={"Heroku-Two-Factor-Code": code},
        json={"scope": ["global"]},
    )
    assert response.status_code == 201, response.text
    # The next login in the same test must not reuse this time step's code.
    clock.advance(30)
    token: str = response.json()["access_token"]["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
