"""Dyno states, as the API shows them (HEROKU_BEHAVIOUR §1.3)."""

from __future__ import annotations

from enum import StrEnum


class DynoState(StrEnum):
    STARTING = "starting"
    UP = "up"
    CRASHED = "crashed"
    DOWN = "down"
    IDLE = "idle"


# Crash restart cool-offs: the first restart is immediate, then up to 20, 40, 60, 180 and
# 320 minutes, then every 320 (§1.5).
COOL_OFFS = (0, 20 * 60, 40 * 60, 60 * 60, 180 * 60, 320 * 60)
# A dyno up this long has "started correctly": its crash count starts again.
STABLE_AFTER = 10 * 60
BOOT_TIMEOUT = 60.0  # R10
STOP_GRACE = 30.0  # R12


def cool_off(crashes: int) -> float:
    return float(COOL_OFFS[min(max(crashes, 1) - 1, len(COOL_OFFS) - 1)])


# Daily cycling: every dyno restarts after 24 h plus up to 216 minutes (§1.6).
CYCLE_AFTER = 24 * 3600.0
CYCLE_JITTER = 216 * 60.0
