"""`GET /schema`: the Platform API hyper-schema kiku follows, for clients that read it."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

SCHEMA = Path(__file__).parent.parent / "platform-api-schema.json"

router = APIRouter()


@router.get("/schema")
def schema() -> FileResponse:
    return FileResponse(SCHEMA, media_type="application/schema+json")
