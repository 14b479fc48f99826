"""`KikuClient`: the CLI's one way to talk to the kiku API (Heroku's Platform API v3)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any
from urllib.parse import quote

import httpx

from kiku.cli import KikuCliError

ACCEPT = "application/vnd.heroku+json; version=3"
# Header values a trace must never show: they are, or lead to, the user's credentials.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "heroku-two-factor-code", "cookie", "set-cookie"}
)
# Heroku's CLI gives a request 60 s before giving up (http-call, http.js:434).
TIMEOUT_SECONDS = 60.0

Trace = Callable[[str], None]


class ApiError(KikuCliError):
    """The API answered with a non-2xx status and (usually) `{"id", "message"}`."""

    def __init__(
        self, status: int, id: str | None, message: str, resource: str | None = None
    ) -> None:
        super().__init__(message, error_id=id)
        self.status = status
        self.id = id
        self.resource = resource

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return cls(response.status_code, body.get("id"), body["message"], body.get("resource"))
        text = response.text.strip()[:200]
        message = f"{response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")
        return cls(response.status_code, None, message)

    def format_message(self) -> str:
        if self.status == 401:
            return "Invalid credentials provided. Run `kiku login` first."
        return self.message


class ApiUnreachable(KikuCliError):
    """No HTTP answer at all: nothing listens there, or the connection broke."""


def segment(value: str) -> str:
    """`value` made safe as one path segment: `f"/apps/{segment(app)}"`."""
    return quote(value, safe="")


def cli_version() -> str:
    try:
        return metadata.version("kiku")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class KikuClient:
    """An `httpx.Client` that speaks the kiku API: headers, errors, paging, tracing.

    Methods return the parsed JSON body (`None` when empty); a non-2xx answer raises
    `ApiError`, a connection failure `ApiUnreachable`. `get` follows `Next-Range` and
    returns the whole list. Tests pass `transport=httpx.MockTransport(handler)`.

    Example::

        with KikuClient("http://127.0.0.1:5100", token) as client:
            app = client.post("/apps", json={"name": "shiny"})
            names = [a["name"] for a in client.get("/apps")]
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        trace: Trace | None = None,
        trace_headers: bool = False,
        warn: Callable[[str], None] | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": ACCEPT, "User-Agent": f"kiku-cli/{cli_version()}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        hooks: dict[str, list[Callable[..., Any]]] = {"request": [], "response": []}
        if trace is not None:
            tracer = _Tracer(trace, trace_headers)
            hooks = {"request": [tracer.request], "response": [tracer.response]}
        self._warn = warn
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            transport=transport,
            timeout=timeout,
            event_hooks=hooks,
        )

    def get(
        self,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        partial: bool = False,
    ) -> Any:
        """GET `path`; a list answer with `Next-Range` is fetched to the end unless `partial`."""
        response = self._send("GET", path, headers=headers, params=params)
        body = self._parse(response)
        sent_range = dict(headers or {}).get("Range")
        while not partial and isinstance(body, list):
            next_range = response.headers.get("Next-Range")
            if not next_range or next_range == sent_range:
                break
            sent_range = next_range
            response = self._send(
                "GET", path, headers={**(headers or {}), "Range": next_range}, params=params
            )
            page = self._parse(response)
            body.extend(page if isinstance(page, list) else [])
        return body

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Any:
        """One request, no paging; `auth=(user, password)` sends HTTP Basic instead."""
        return self._parse(
            self._send(method, path, json=json, headers=headers, params=params, auth=auth)
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KikuClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                headers=headers,
                params=params,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ApiUnreachable(
                f"Could not reach the kiku API at {self.base_url}: {exc}; is `kiku server` "
                "running? Set KIKU_API_URL to point elsewhere."
            ) from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(
                f"The request {method} {path} to the kiku API at {self.base_url} failed: {exc}"
            ) from exc
        self._pass_on_warnings(response)
        if not response.is_success:
            raise ApiError.from_response(response)
        return response

    def _pass_on_warnings(self, response: httpx.Response) -> None:
        if self._warn is None:
            return
        for name in ("X-Heroku-Warning", "Warning-Message"):
            for value in response.headers.get_list(name):
                self._warn(value)

    def _parse(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise KikuCliError(
                f"The kiku API at {self.base_url} answered {response.request.method} "
                f"{response.request.url.path} with something that is not JSON."
            ) from exc


class _Tracer:
    """httpx event hooks printing `--> GET /apps` and `<-- 200 OK` (KIKU_DEBUG)."""

    def __init__(self, trace: Trace, with_headers: bool) -> None:
        self._trace = trace
        self._with_headers = with_headers

    def request(self, request: httpx.Request) -> None:
        self._trace(f"--> {request.method} {request.url.raw_path.decode('ascii')}")
        self._headers(request.headers)

    def response(self, response: httpx.Response) -> None:
        self._trace(f"<-- {response.status_code} {response.reason_phrase}")
        self._headers(response.headers)

    def _headers(self, headers: httpx.Headers) -> None:
        if not self._with_headers:
            return
        for name, value in headers.items():
            shown = "[REDACTED]" if name.lower() in SECRET_HEADERS else value
            self._trace(f"    {name}: {shown}")
