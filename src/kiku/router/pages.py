"""Heroku-style pages the router answers with itself, as whole HTTP/1.1 responses."""

from __future__ import annotations

import html
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
H11 = RouterError("H11", "Backlog too deep", 503)
H12 = RouterError("H12", "Request timeout", 503)
H13 = RouterError("H13", "Connection closed without response", 503)
H14 = RouterError("H14", "No web dynos running", 503)
H15 = RouterError("H15", "Idle connection", 503)
H17 = RouterError("H17", "Poorly formatted HTTP response", 503)
H18 = RouterError("H18", "Server Request Interrupted", 503)
H19 = RouterError("H19", "Backend connection timeout", 503)
H20 = RouterError("H20", "App boot timeout", 503)
H21 = RouterError("H21", "Backend connection refused", 503)
H22 = RouterError("H22", "Connection limit reached", 503)
H26 = RouterError("H26", "Request Error", 400, page="bad-request")
H26_EXPECT = RouterError("H26", "Request Error", 417, page="bad-request")
H27 = RouterError("H27", "Client Request Interrupted", 499, at="warning")
H28 = RouterError("H28", "Client Connection Idle", 499, at="warning")
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


_RESPONSES: dict[tuple[str, int, str], bytes] = {}


def response(error: RouterError, extra_headers: bytes = b"", custom_url: str = "") -> bytes:
    """The whole response for `error`; `extra_headers` are CRLF-terminated header lines.

    With `custom_url` (the app's ERROR_PAGE_URL or MAINTENANCE_PAGE_URL), the page is the
    app's own, shown as Heroku does: in a full-window iframe, so its relative links to
    images and CSS resolve against where it is stored. The status stays the error's."""
    return template(error, custom_url).replace(b"%s", extra_headers, 1)


def template(error: RouterError, custom_url: str = "") -> bytes:
    """`response()` with `%s` where the extra headers go (the fast lane fills it in)."""
    key = (error.page, error.status, custom_url)
    template = _RESPONSES.get(key)
    if template is None:
        if len(_RESPONSES) > 1000:  # custom URLs come and go with config vars
            _RESPONSES.clear()
        if custom_url:
            template = _render_custom(error.page, error.status, custom_url)
        else:
            template = _render(error.page, error.status)
        _RESPONSES[key] = template
    return template


_CUSTOM = (
    '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
    "<style>html,body,iframe{{margin:0;padding:0;border:0;width:100%;height:100%;"
    "overflow:hidden;display:block}}</style>\n</head>\n<body>\n"
    '<iframe src="{url}" title="{title}"></iframe>\n</body>\n</html>\n'
)


def _render_custom(page: str, status: int, url: str) -> bytes:
    title = html.escape(_PAGES[page][0])
    body = _CUSTOM.format(title=title, url=html.escape(url, quote=True)).encode()
    reason = _REASONS.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Cache-Control: no-cache, no-store\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    return head.encode() + b"%s\r\n" + body


def page_url(value: str) -> str:
    """An ERROR_PAGE_URL / MAINTENANCE_PAGE_URL kiku will show: absolute http(s) or
    protocol-relative (`//host/page.html`); anything else is ignored ('')."""
    value = value.strip()
    absolute = value.startswith(("https://", "http://", "//")) and len(value) <= 2048
    if absolute and not any(c.isspace() or ord(c) < 32 for c in value):
        return value
    return ""
