"""Dyno sizes with Heroku's memory and process limits (HEROKU_BEHAVIOUR §1.2, §1.8, §1.9)."""

from __future__ import annotations

from dataclasses import dataclass

from kiku.errors import InvalidParams


@dataclass(frozen=True)
class DynoSize:
    name: str  # as the API shows it: "Standard-1X"
    memory_mb: int
    pids: int
    cpu_shares: int
    # free/hobby/eco/basic: one dyno per process type, and no mixing with other sizes.
    single: bool = False


SIZES = {
    size.name.lower(): size
    for size in (
        DynoSize("Free", 512, 256, 512, single=True),
        DynoSize("Hobby", 512, 256, 512, single=True),
        DynoSize("Eco", 512, 256, 512, single=True),
        DynoSize("Basic", 512, 256, 512, single=True),
        DynoSize("Standard-1X", 512, 256, 1024),
        DynoSize("Standard-2X", 1024, 512, 2048),
        DynoSize("Performance-M", 2560, 16384, 4096),
        DynoSize("Performance-L", 14336, 32768, 8192),
    )
}
DEFAULT_SIZE = "standard-1x"
MAX_DYNOS_PER_APP = 100


def size_named(name: str) -> DynoSize:
    size = SIZES.get(name.strip().lower())
    if size is None:
        known = ", ".join(s.name for s in SIZES.values())
        raise InvalidParams(f"Unknown dyno size {name!r}; choose one of {known}.")
    return size


def host_memory_mb() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def check_formation(entries: dict[str, tuple[int, str]], host_mb: int | None = None) -> None:
    """Heroku's rules for a whole formation: {type: (quantity, size)}; and this host's RAM."""
    sizes = {size_named(size) for quantity, size in entries.values() if quantity > 0}
    for kind, (quantity, size) in entries.items():
        if quantity < 0:
            raise InvalidParams(f"Cannot scale {kind} below 0.")
        chosen = size_named(size)
        if chosen.single and quantity > 1:
            raise InvalidParams(
                f"Cannot run more than 1 {chosen.name} dyno per process type ({kind}={quantity}). "
                f"Use a larger size, e.g. kiku ps:scale {kind}={quantity}:standard-1x."
            )
    singles = {s for s in sizes if s.single}
    if singles and len(sizes) > 1:
        names = ", ".join(sorted(s.name for s in sizes))
        raise InvalidParams(
            f"Cannot mix {names} dynos in one app: {', '.join(sorted(s.name for s in singles))} "
            "dynos cannot run beside other sizes. Scale every process type to one size."
        )
    total = sum(quantity for quantity, _ in entries.values())
    if total > MAX_DYNOS_PER_APP:
        raise InvalidParams(f"An app may run at most {MAX_DYNOS_PER_APP} dynos; asked for {total}.")
    for kind, (quantity, size) in entries.items():
        memory = size_named(size).memory_mb
        if quantity > 0 and host_mb is not None and memory > host_mb:
            raise InvalidParams(
                f"This host has {host_mb} MB of memory, less than one {size_named(size).name} "
                f"dyno needs ({memory} MB) for {kind}. Choose a smaller size."
            )
