"""`DynoNetwork`: a network namespace per dyno with a veth pair to the host.

Each dyno gets slot *n* of a private pool (default 10.213.0.0/16, one /30 per dyno): the host
end `kiku<key>` holds `.1`, the dyno's `eth0` holds `.2`. The host (the router) reaches a
web dyno at `.2:$PORT`. The dyno's 127.0.0.1 is its own loopback, so it cannot reach the
platform's loopback ports (the API, databases bound to 127.0.0.1), and it has no route
beyond its /30. The host end has IPv6 off, so no link-local path to the host exists either.

Slots are files created with O_EXCL in `slots_dir`, so concurrent starts (and a restarted
control plane) never hand one out twice; `release()` deletes the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Host ends of dynos' veths are named VETH_PREFIX + a short key of the dyno id.
VETH_PREFIX = "kiku"
DEFAULT_POOL = "10.213.0.0/16"
NETNS_DIR = Path("/run/netns")


def short_key(dyno_id: str) -> str:
    """10 hex chars naming a dyno's netns and veth (interface names are at most 15 chars)."""
    return hashlib.sha1(dyno_id.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class DynoNetwork:
    key: str
    slot: int
    host_ip: str
    dyno_ip: str

    @property
    def netns(self) -> str:
        return f"kiku-{self.key}"

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def host_if(self) -> str:
        return f"{VETH_PREFIX}{self.key}"

    def up(self) -> None:
        _ip_batch(
            [
                f"netns add {self.netns}",
                f"link add {self.host_if} type veth peer name eth0 netns {self.netns}",
                f"addr add {self.host_ip}/30 dev {self.host_if}",
            ]
        )
        with contextlib.suppress(OSError):  # IPv6 may be off on the host altogether
            Path(f"/proc/sys/net/ipv6/conf/{self.host_if}/disable_ipv6").write_text("1")
        _ip_batch([f"link set {self.host_if} up"])
        _ip_batch(
            [f"addr add {self.dyno_ip}/30 dev eth0", "link set eth0 up", "link set lo up"],
            netns=self.netns,
        )

    def down(self) -> None:
        """Delete the veth pair and the namespace; a no-op for what is already gone."""
        _ip_batch([f"link del {self.host_if}", f"netns del {self.netns}"], force=True)


class NetworkPool:
    """Hands out /30 slots of `pool` to dynos, one file per slot in `slots_dir`."""

    def __init__(self, slots_dir: Path, pool: str = DEFAULT_POOL) -> None:
        self.slots_dir = slots_dir
        self.pool = ipaddress.IPv4Network(pool)
        self.size = self.pool.num_addresses // 4

    def blackhole(self) -> None:
        """Traffic to an address of the pool with no dyno behind it stops here, instead of
        leaving by the host's default route; each dyno's /30 route is more specific."""
        subprocess.run(
            ["ip", "route", "replace", "blackhole", str(self.pool)],
            capture_output=True,
            check=False,
        )

    def firewall(self) -> bool:
        """Dynos may answer the host (the router) but not open connections to it, so no
        host service is in reach, whatever address it listens on. False without nft."""
        chain = "inet kiku dyno_input"
        veths = f'iifname "{VETH_PREFIX}*"'
        rules = (
            "add table inet kiku\n"
            "flush table inet kiku\n"
            f"add chain {chain} {{ type filter hook input priority 0; policy accept; }}\n"
            f"add rule {chain} {veths} ct state established,related accept\n"
            f"add rule {chain} {veths} drop\n"
        )
        try:
            done = subprocess.run(["nft", "-f", "-"], input=rules, capture_output=True, text=True)
        except FileNotFoundError:
            return False
        return done.returncode == 0

    def allocate(self, dyno_id: str) -> DynoNetwork:
        self.slots_dir.mkdir(parents=True, exist_ok=True)
        # Start the search at a hash of the id: fewer collisions to skip under concurrency.
        first = int(short_key(dyno_id), 16) % self.size
        for i in range(self.size):
            slot = (first + i) % self.size
            if slot == 0:  # .0/30 would make the host end the pool's network address + 1 only
                continue
            try:
                fd = os.open(self.slots_dir / str(slot), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.write(fd, dyno_id.encode())
            os.close(fd)
            return self.network(dyno_id, slot)
        raise RuntimeError(f"no free dyno address left in {self.pool}")

    def network(self, dyno_id: str, slot: int) -> DynoNetwork:
        base = int(self.pool.network_address) + 4 * slot
        return DynoNetwork(
            key=short_key(dyno_id),
            slot=slot,
            host_ip=str(ipaddress.IPv4Address(base + 1)),
            dyno_ip=str(ipaddress.IPv4Address(base + 2)),
        )

    def release(self, network: DynoNetwork) -> None:
        (self.slots_dir / str(network.slot)).unlink(missing_ok=True)


def _ip_batch(commands: list[str], netns: str | None = None, force: bool = False) -> None:
    """Several `ip` commands in one process (each `ip` run costs a few ms)."""
    argv = ["ip"]
    if netns:
        argv += ["-n", netns]
    if force:
        argv.append("-force")
    argv += ["-batch", "-"]
    result = subprocess.run(
        argv, input="\n".join(commands) + "\n", capture_output=True, text=True, check=False
    )
    if result.returncode != 0 and not force:
        raise RuntimeError(f"ip {' ; '.join(commands)}: {result.stderr.strip()}")
