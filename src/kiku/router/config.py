"""The router's knobs. Heroku's values are the defaults; tests shorten the timeouts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouterConfig:
    proto: str = "http"  # X-Forwarded-Proto and the log's protocol=
    connect_timeout: float = 5.0  # per dyno, then the next dyno (H19)
    connect_tries: int = 10  # dynos tried before H19/H21 (fewer if fewer exist)
    first_byte_timeout: float = 30.0  # request sent → first response byte (H12)
    idle_timeout: float = 55.0  # rolling window once bytes flow (H15)
    boot_timeout: float = 75.0  # request held while the app is starting (H20)
    keepalive_timeout: float = 60.0  # idle client keep-alive connection
    backend_idle_timeout: float = 90.0  # idle pooled dyno connection
    max_request_line: int = 8192
    max_header_line: int = 8192
    max_header_name: int = 1000
    max_headers: int = 1000
    body_buffer: int = 65536  # request body held while no dyno is connected yet
    # Requests in flight or held per app on this router, per up web dyno (H11 above it;
    # Heroku's current text: 200 x dynos per router).
    backlog_per_dyno: int = 200
    # Client connections per app on this router (H22 above it).
    max_app_connections: int = 10000
    # The compiled fast lane serves the plain port's usual requests (router/fastlane.py).
    lane: bool = True
