"""Settings for one kiku platform, read from a mapping handed in (never at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 5100
DEFAULT_ROUTER_PORT = 8080
DEFAULT_ROUTER_TLS_PORT = 8443
DEFAULT_RENDEZVOUS_PORT = 5101
DEFAULT_DOMAIN = "localhost"
# Heroku's API budget: 4500 requests per account per hour (HEROKU_BEHAVIOUR §10.5).
DEFAULT_RATE_LIMIT = 4500
DEFAULT_PAGE_SIZE = 200
# Heroku allows 100 apps per account (HEROKU_BEHAVIOUR §9.1); an operator may raise it.
DEFAULT_APPS_PER_ACCOUNT = 100


# Numeric settings an operator may set from the environment.
_NUMBERS = {
    "rate_limit_per_hour": "KIKU_RATE_LIMIT",
    "page_size": "KIKU_PAGE_SIZE",
    "apps_per_account": "KIKU_APPS_PER_ACCOUNT",
    "build_memory_mb": "KIKU_BUILD_MEMORY_MB",
    "build_timeout": "KIKU_BUILD_TIMEOUT",
    "runtime_metrics_interval": "KIKU_RUNTIME_METRICS_INTERVAL",
    "router_workers": "KIKU_ROUTER_WORKERS",
}


def _positive(variable: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{variable} must be a positive whole number, not {text!r}.")
    return value


def default_data_dir(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".kiku"


@dataclass(frozen=True)
class Settings:
    """Where the platform keeps its state and where its parts listen.

    Example::

        settings = Settings.from_env(os.environ, data_dir=Path("/srv/kiku"))
    """

    data_dir: Path
    api_host: str = DEFAULT_API_HOST
    api_port: int = DEFAULT_API_PORT
    router_port: int = DEFAULT_ROUTER_PORT
    router_host: str = "0.0.0.0"
    # HTTPS, with kiku's local CA's certificate for *.DOMAIN (and users' for custom domains).
    router_tls_port: int = DEFAULT_ROUTER_TLS_PORT
    # Router processes sharing the ports (SO_REUSEPORT); 0: one per core.
    router_workers: int = 0
    # TLS attach for one-off dynos (Heroku's rendezvous://), for the official Heroku CLI.
    rendezvous_port: int = DEFAULT_RENDEZVOUS_PORT
    domain: str = DEFAULT_DOMAIN
    database_url: str | None = None
    rate_limit_per_hour: int = DEFAULT_RATE_LIMIT
    page_size: int = DEFAULT_PAGE_SIZE
    apps_per_account: int = DEFAULT_APPS_PER_ACCOUNT
    # A build's memory and time (Heroku: compile time 15 min); see build/compiler.py.
    build_memory_mb: int = 2048
    build_timeout: int = 15 * 60
    # Seconds between a dyno's runtime metrics samples (Heroku: about every 20 s).
    runtime_metrics_interval: int = 20
    # The dynos' stack root filesystem; scripts/build-stack.sh builds it (make install).
    stack_dir: Path = Path("/var/lib/kiku/stacks/kiku-24")
    # CA certificates (PEM) that syslog+tls and https drains trust besides the system's.
    drain_ca_file: Path | None = None
    # Drains may send to loopback and private addresses (tests; a trusted network).
    drain_allow_private: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: object) -> Settings:
        """Build settings from `KIKU_*` variables; explicit overrides (CLI flags) win."""
        values: dict[str, object] = {
            "data_dir": Path(environ["KIKU_DATA_DIR"])
            if environ.get("KIKU_DATA_DIR")
            else default_data_dir(environ),
            "database_url": environ.get("KIKU_DATABASE_URL") or None,
            "domain": environ.get("KIKU_DOMAIN") or DEFAULT_DOMAIN,
        }
        if environ.get("KIKU_STACK_DIR"):
            values["stack_dir"] = Path(environ["KIKU_STACK_DIR"])
        if environ.get("KIKU_DRAIN_ALLOW_PRIVATE", "") not in ("", "0", "false", "no"):
            values["drain_allow_private"] = True
        if environ.get("KIKU_DRAIN_CA_FILE"):
            values["drain_ca_file"] = Path(environ["KIKU_DRAIN_CA_FILE"])
        for name, variable in _NUMBERS.items():
            if environ.get(variable):
                values[name] = _positive(variable, environ[variable])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def sqlalchemy_url(self) -> str:
        """PostgreSQL by KIKU_DATABASE_URL for multi-node; SQLite in the data dir by default."""
        if self.database_url:
            url = self.database_url
            # Heroku-style postgres:// URLs name no driver; kiku speaks psycopg 3.
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix) :]
            return url
        return f"sqlite:///{self.data_dir / 'kiku.db'}"

    @property
    def api_url(self) -> str:
        """The URL the CLI, git and the official Heroku CLI reach the API (and git) at."""
        host = self.api_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.api_port}"

    def web_host(self, app_name: str) -> str:
        """The Host header the router answers for an app."""
        return f"{app_name}.{self.domain}".lower()

    def web_url(self, app_name: str) -> str:
        port = "" if self.router_port == 80 else f":{self.router_port}"
        return f"http://{app_name}.{self.domain}{port}/"

    def git_url(self, app_name: str) -> str:
        return f"{self.api_url}/{app_name}.git"
