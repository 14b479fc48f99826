"""Heroku-style pages the router answers with itself, as whole HTTP/1.1 responses."""

from __future__ import annotations

from dataclasses import dataclass

_TEMPLATE = (
    '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
    "</head>\n<body>\n<h1>{title}</h1>\n<p>{text}</p>\n</body>\n</html>\n"
)

_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    417: "Expectation Failed",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class RouterError:
    """An H code: what the log says (`code`, `desc`, `at`) and what the client sees."""

    code: str
    desc: str
    status: int
    at: str = "error"
    page: str = "application-error"


H10 = RouterError("H10", "App crashed", 503)
H12 = RouterError("H12", "Request timeout", 503)
H13 = RouterError("H13", "Connection closed without response", 503)
H14 = RouterError("H14", "No web dynos running", 503)
H15 = RouterError("H15", "Idle connection", 503)
H17 = RouterError("H17", "Poorly formatted HTTP response", 503)
H18 = RouterError("H18", "Server Request Interrupted", 503)
H19 = RouterError("H19", "Backend connection timeout", 503)
H20 = RouterError("H20", "App boot timeout", 503)
H21 = RouterError("H21", "Backend connection refused", 503)
H26 = RouterError("H26", "Request Error", 400, page="bad-request")
H26_EXPECT = RouterError("H26", "Request Error", 417, page="bad-request")
H27 = RouterError("H27", "Client Request Interrupted", 499, at="warning")
H80 = RouterError("H80", "Maintenance mode", 503, at="info", page="maintenance-mode")
NO_SUCH_APP = RouterError("", "", 404, at="info", page="no-such-app")

_PAGES = {
    "application-error": (
        "Application error",
        "An error occurred in the application and your page could not be served. "
        "If you are the application owner, check your logs for details.",
    ),
    "maintenance-mode": (
        "Offline for Maintenance",
        "This app is in maintenance mode. Please check back soon.",
    ),
    "no-such-app": ("No such app", "There is no app configured at that hostname."),
    "bad-request": ("Bad Request", "The request could not be understood by the router."),
}


def _render(page: str, status: int) -> bytes:
    title, text = _PAGES[page]
    body = _TEMPLATE.format(title=title, text=text).encode()
    reason = _REASONS.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Cache-Control: no-cache, no-store\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    return head.encode() + b"%s\r\n" + body


_RESPONSES: dict[tuple[str, int], bytes] = {}


def response(error: RouterError, extra_headers: bytes = b"") -> bytes:
    """The whole response for `error`; `extra_headers` are CRLF-terminated header lines."""
    key = (error.page, error.status)
    template = _RESPONSES.get(key)
    if template is None:
        template = _RESPONSES[key] = _render(error.page, error.status)
    return template.replace(b"%s", extra_headers, 1)
