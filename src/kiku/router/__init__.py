"""kiku's HTTP router (Heroku's router behaviour, shared/spec/HEROKU_BEHAVIOUR.md §3).

Runs as its own process(es): `python -m kiku.router --routes-socket PATH`. Routes arrive
as JSON snapshot lines on the control plane's unix socket (feed.py); RouteTable owns them.

Log lines: one per request, `<app_id> <Heroku router line>`, for example
`0b7c…-… at=info method=GET path="/" host=myapp.localhost request_id=… fwd="127.0.0.1"
dyno=web.1 connect=1ms service=5ms status=200 bytes=13 protocol=http`. Requests that match
no app (unknown host, unparseable request) use `-` as the app id. A router process sends
them to logplex as datagrams (logsink.py, `--log-socket`), with the time added.
"""

from kiku.router.config import RouterConfig
from kiku.router.server import Router
from kiku.router.table import Backend, Route, RouteTable

__all__ = ["Backend", "Route", "RouteTable", "Router", "RouterConfig"]
