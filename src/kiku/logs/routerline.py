"""`RouterRequest`: what metrics need from one `heroku[router]` line (HEROKU_BEHAVIOUR §3.7).

at=info method=GET path="/" host=… request_id=… fwd="…" dyno=web.1 connect=1ms
service=5ms status=200 bytes=13 protocol=http
sock=client at=warning code=H27 desc="Client Request Interrupted" … status=499 …
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# key=value or key="quoted value" (desc, path, fwd and cause are quoted; paths never hold
# a raw `"`, the router writes %22).
_FIELD = re.compile(r'(\w+)=("[^"]*"|\S*)')
# The router routes only to web dynos: a line that reached none (H10, H14, H80 …) is web's.
ROUTED_TYPE = "web"


@dataclass(frozen=True, slots=True)
class RouterRequest:
    process_type: str  # from dyno=web.1
    status: int | None  # None when the router logged none (H24)
    service_ms: int | None  # None when no dyno was reached
    code: str | None  # the H code of an at=error line


def parse(message: str) -> RouterRequest | None:
    """The request a router line tells of; None for anything else."""
    fields = dict(_FIELD.findall(message))
    at = fields.get("at")
    if at is None or "method" not in fields:
        return None
    dyno = fields.get("dyno", "")
    return RouterRequest(
        process_type=dyno.partition(".")[0] or ROUTED_TYPE,
        status=_number(fields.get("status", "")),
        service_ms=_number(fields.get("service", "").removesuffix("ms")),
        code=(fields.get("code") or None) if at == "error" else None,
    )


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None
