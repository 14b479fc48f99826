"""`Accounts`: creating users, the two-step login, and the tokens it hands out."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from kiku.accounts import passwords, tokens, totp
from kiku.errors import Conflict, InvalidParams, NotFound, TwoFactorRequired, Unauthorized
from kiku.store import Store
from kiku.store.models import Authorization, RecoveryCode, User

# Heroku's CLI tokens live a year (HEROKU_BEHAVIOUR §10.6); a client may ask for less.
TOKEN_LIFETIME = timedelta(days=365)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$")
SCOPES = frozenset({"global", "identity", "read", "write", "read-protected", "write-protected"})


@dataclass(frozen=True)
class Enrolment:
    """What a new user must be shown once: the TOTP secret and the recovery codes."""

    user: User
    totp_secret: str
    otpauth_uri: str
    recovery_codes: list[str]


@dataclass(frozen=True)
class IssuedToken:
    authorization: Authorization
    token: str


class Accounts:
    """The rules of signing in. Time comes from `clock` (seconds since the epoch)."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- users -----------------------------------------------------------------

    def create_user(
        self, email: str, password: str, *, verified: bool = False, name: str | None = None
    ) -> Enrolment:
        """Create an account with TOTP enrolled at once: two-step login is not optional."""
        email = email.strip().lower()
        if not EMAIL.match(email):
            raise InvalidParams(f"{email!r} is not a valid email address.")
        problem = passwords.password_problem(password)
        if problem:
            raise InvalidParams(problem)
        with self.store.session() as db:
            if db.scalar(select(User).where(User.email == email)):
                raise Conflict(f"An account with the email {email} already exists.")
            user = User(
                email=email,
                name=name,
                password_hash=passwords.hash_password(password),
                verified=verified,
                created_at=self.now(),
                updated_at=self.now(),
            )
            db.add(user)
            return self._enrol(user)

    def reset_second_factor(self, email: str) -> Enrolment:
        """New TOTP secret and recovery codes for a user who lost both; old tokens stop working."""
        with self.store.session() as db:
            user = db.scalar(select(User).where(User.email == email.strip().lower()))
            if user is None:
                raise NotFound(f"There is no account with the email {email}.", resource="user")
            db.execute(delete(Authorization).where(Authorization.user_id == user.id))
            user.updated_at = self.now()
            return self._enrol(user)

    def _enrol(self, user: User) -> Enrolment:
        secret = totp.new_secret()
        user.totp_secret = secret
        user.totp_last_step = None
        codes = self.regenerate_recovery_codes(user)
        return Enrolment(user, secret, totp.provisioning_uri(secret, user.email), codes)

    def regenerate_recovery_codes(self, user: User) -> list[str]:
        codes = tokens.new_recovery_codes()
        user.recovery_codes = [RecoveryCode(code_hash=tokens.digest(c)) for c in codes]
        return codes

    # -- the two-step login ----------------------------------------------------

    def check_password(self, db: Session, email: str, password: str) -> User:
        user = db.scalar(select(User).where(User.email == email.strip().lower()))
        # Hash even for unknown emails, so timing does not reveal which accounts exist.
        if user is None:
            passwords.verify_password(_dummy_hash(), password)
            raise Unauthorized("There were problems with your login credentials.")
        if not passwords.verify_password(user.password_hash, password):
            raise Unauthorized("There were problems with your login credentials.")
        return user

    def check_second_factor(self, db: Session, user: User, code: str | None) -> None:
        """Accept a current TOTP code (once) or an unused recovery code."""
        if not code:
            raise TwoFactorRequired("Two-factor code required.")
        step = totp.matching_step(user.totp_secret, code, self._clock(), user.totp_last_step)
        if step is not None:
            user.totp_last_step = step
            return
        wanted = tokens.digest(tokens.normalize_recovery_code(code))
        for recovery in user.recovery_codes:
            if recovery.used_at is None and recovery.code_hash == wanted:
                recovery.used_at = self.now()
                return
        raise TwoFactorRequired("Invalid two-factor code.")

    def login(self, db: Session, email: str, password: str, code: str | None) -> User:
        user = self.check_password(db, email, password)
        self.check_second_factor(db, user, code)
        user.last_login = self.now()
        return user

    # -- tokens ----------------------------------------------------------------

    def issue_token(
        self,
        db: Session,
        user: User,
        *,
        description: str = "",
        scope: list[str] | None = None,
        expires_in: int | None = None,
    ) -> IssuedToken:
        scope = scope or ["global"]
        unknown = sorted(set(scope) - SCOPES)
        if unknown:
            raise InvalidParams(
                f"Unknown scope {', '.join(unknown)}; use {', '.join(sorted(SCOPES))}."
            )
        lifetime = TOKEN_LIFETIME
        if expires_in is not None:
            if expires_in <= 0:
                raise InvalidParams("expires_in must be a positive number of seconds.")
            lifetime = min(lifetime, timedelta(seconds=expires_in))
        token = tokens.new_token()
        now = self.now()
        authorization = Authorization(
            user=user,
            description=description,
            scope=scope,
            token_hash=tokens.digest(token),
            token_hint=tokens.token_hint(token),
            expires_at=now + lifetime,
            created_at=now,
            updated_at=now,
        )
        db.add(authorization)
        db.flush()
        return IssuedToken(authorization, token)

    def authenticate(self, db: Session, token: str) -> Authorization:
        """The live authorization behind `token`, or Unauthorized."""
        authorization = db.scalar(
            select(Authorization)
            .options(joinedload(Authorization.user))
            .where(Authorization.token_hash == tokens.digest(token))
        )
        if authorization is None:
            raise Unauthorized("Invalid credentials provided.")
        if authorization.expires_at is not None and authorization.expires_at <= self.now():
            raise Unauthorized("Your API token has expired. Run `kiku login` to get a new one.")
        return authorization

    def expires_in(self, authorization: Authorization) -> int | None:
        if authorization.expires_at is None:
            return None
        return max(0, int((authorization.expires_at - self.now()).total_seconds()))


@functools.cache
def _dummy_hash() -> str:
    return passwords.hash_password("kiku-timing-equaliser")
