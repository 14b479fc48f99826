import pytest

from kiku.errors import Conflict, InvalidParams, NotFound, Unauthorized
from kiku.platform import Platform
from kiku.store.models import User
from kikutest import FakeClock


def test_email_and_password_are_checked(platform: Platform) -> None:
    with pytest.raises(InvalidParams, match="valid email"):
        platform.accounts.create_user("not-an-email", "long enough password")
    with pytest.raises(InvalidParams, match="at least 8"):
        platform.accounts.create_user("dev@example.com", "short")


def test_email_is_unique_ignoring_case(platform: Platform) -> None:
    platform.accounts.create_user("Dev@Example.com", "long enough password")
    with pytest.raises(Conflict):
        platform.accounts.create_user("dev@example.com", "long enough password")


def test_password_is_stored_as_argon2_and_secrets_hashed(platform: Platform) -> None:
    enrolment = platform.accounts.create_user("dev@example.com", "long enough password")
    with platform.store.session() as db:
        user = db.get(User, enrolment.user.id)
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        assert "long enough password" not in user.password_hash
        hashes = [code.code_hash for code in user.recovery_codes]
        assert enrolment.recovery_codes[0] not in hashes
        token = platform.accounts.issue_token(db, user)
        assert token.authorization.token_hash != token.token
        assert token.token not in token.authorization.token_hash


def test_reset_second_factor_revokes_tokens(platform: Platform, clock: FakeClock) -> None:
    enrolment = platform.accounts.create_user("dev@example.com", "long enough password")
    with platform.store.session() as db:
        user = db.get(User, enrolment.user.id)
        assert user is not None
        token = platform.accounts.issue_token(db, user).token
    fresh = platform.accounts.reset_second_factor("dev@example.com")
    assert fresh.totp_secret != enrolment.totp_secret
    assert set(fresh.recovery_codes).isdisjoint(enrolment.recovery_codes)
    with platform.store.session() as db, pytest.raises(Unauthorized):
        platform.accounts.authenticate(db, token)
    with pytest.raises(NotFound):
        platform.accounts.reset_second_factor("nobody@example.com")
