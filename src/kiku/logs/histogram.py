"""Response times as a small, mergeable histogram: `{bucket: count}`.

Milliseconds under 64 have a bucket each; above, every doubling is cut into 32 buckets
(as HdrHistogram does), so a percentile read back is at most ~3 % off, whatever the
range: a minute of traffic costs a few dozen dict entries however many requests it saw.

    counts: dict[int, int] = {}
    add(counts, 18)
    percentile(counts, 95)     # 18
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

EXACT = 64  # ms below this keep their own bucket
SUB = 32  # buckets per doubling above EXACT
_SUB_BITS = SUB.bit_length()  # 6: the bits of `top` below, as in HdrHistogram


def bucket(ms: int) -> int:
    if ms < EXACT:
        return max(ms, 0)
    shift = ms.bit_length() - _SUB_BITS
    return EXACT + (shift - 1) * SUB + ((ms >> shift) - SUB)


def value(index: int) -> int:
    """The middle of a bucket, in ms."""
    if index < EXACT:
        return index
    shift = (index - EXACT) // SUB + 1
    top = (index - EXACT) % SUB + SUB
    return (top << shift) + ((1 << shift) - 1) // 2


def add(counts: dict[int, int], ms: int, times: int = 1) -> None:
    index = bucket(ms)
    counts[index] = counts.get(index, 0) + times


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for counts in histograms:
        for index, count in counts.items():
            merged[index] = merged.get(index, 0) + count
    return merged


def percentile(counts: Mapping[int, int], p: float) -> int | None:
    """The nearest-rank `p`th percentile (0 < p <= 100), None for an empty histogram."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= rank:
            return value(index)
    return value(max(counts))  # pragma: no cover - the ranks always end within the total
