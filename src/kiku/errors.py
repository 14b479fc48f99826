"""kiku's errors. Each carries the HTTP status and Heroku error id the API answers with.

    KikuError                      500 internal_server_error
    ├── BadRequest                 400 bad_request
    ├── Unauthorized               401 unauthorized
    ├── Forbidden                  403 forbidden
    │   ├── TwoFactorRequired      403 two_factor
    │   └── Suspended              403 suspended
    ├── NotFound                   404 not_found
    │   └── AppNotFound            404 not_found (resource "app")
    ├── NotAcceptable              406 not_acceptable
    ├── Conflict                   409 conflict
    ├── RangeNotSatisfiable        416 requested_range_not_satisfiable
    ├── InvalidParams              422 invalid_params
    ├── RateLimited                429 rate_limit
    └── Unavailable                503 unavailable (temporary: retry after `delay`)

The API renders any of them as `{"id", "message"[, "resource"]}` in one handler; the CLI
prints the message and exits with `exit_code`.
"""

from __future__ import annotations

from typing import ClassVar


class KikuError(Exception):
    status: ClassVar[int] = 500
    id: ClassVar[str] = "internal_server_error"
    exit_code: ClassVar[int] = 1
    resource: str | None = None

    def __init__(self, message: str, *, resource: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if resource is not None:
            self.resource = resource

    def body(self) -> dict[str, str]:
        body = {"id": self.id, "message": self.message}
        if self.resource:
            body["resource"] = self.resource
        return body


class BadRequest(KikuError):
    status = 400
    id = "bad_request"


class Unauthorized(KikuError):
    status = 401
    id = "unauthorized"


class Forbidden(KikuError):
    status = 403
    id = "forbidden"


class TwoFactorRequired(Forbidden):
    id = "two_factor"


class Suspended(Forbidden):
    id = "suspended"


class NotFound(KikuError):
    status = 404
    id = "not_found"


class AppNotFound(NotFound):
    resource = "app"

    def __init__(self, identity: str = "") -> None:
        super().__init__("Couldn't find that app.")
        self.identity = identity


class NotAcceptable(KikuError):
    status = 406
    id = "not_acceptable"


class Conflict(KikuError):
    status = 409
    id = "conflict"


class RangeNotSatisfiable(KikuError):
    status = 416
    id = "requested_range_not_satisfiable"


class InvalidParams(KikuError):
    status = 422
    id = "invalid_params"


class RateLimited(KikuError):
    status = 429
    id = "rate_limit"

    def __init__(self) -> None:
        super().__init__(
            "Your account reached the API rate limit\n"
            "Please wait a few minutes before making new requests"
        )


class Unavailable(KikuError):
    """A part is down for now; the caller may retry after `delay` seconds."""

    status = 503
    id = "unavailable"

    def __init__(self, message: str, *, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay
