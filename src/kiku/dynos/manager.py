"""`DynoManager`: converges running dynos to the desired formation, one level-triggered pass
at a time (`reconcile()`), like a Kubernetes controller.

Desired state is in the store (each app's current release and its formation); actual state
is what the backend reports. The manager owns the `dynos` table, which the API reads.
Each pass moves each dyno at most one step; the moves are the `_on_*` methods.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiku.apps.features import PREBOOT, RUNTIME_DYNO_METADATA
from kiku.apps.releases import RELEASE_TYPE, Releases
from kiku.build.blobs import BlobStore
from kiku.dynos.backend import Backend, DynoHandle, DynoSpec
from kiku.dynos.oneoff import one_off_name, run_to_completion
from kiku.dynos.sizes import size_named
from kiku.dynos.states import (
    BOOT_TIMEOUT,
    CYCLE_AFTER,
    CYCLE_JITTER,
    STABLE_AFTER,
    STOP_GRACE,
    DynoState,
    cool_off,
)
from kiku.events import AppEvents
from kiku.store import Store
from kiku.store.models import App, Dyno, Formation, Release, Slug

log = logging.getLogger("kiku.dynos")
WEB_PORT = 5000  # each web dyno has its own network namespace, so one port serves all
Events = Callable[[str, str, str], None]  # (app_id, process, text): "heroku[web.1]: ..."


@dataclass(frozen=True)
class Slot:
    """One dyno the formation asks for, on the app's current release."""

    app_id: str
    app_name: str
    name: str
    type: str
    command: str
    size: str
    release_id: str
    release_version: int
    slug: Path
    env: dict[str, str]
    restart_requested_at: datetime | None
    # Labs runtime-dyno-metadata, as it was when the release was made.
    metadata: bool = False
    # Labs preboot, as it is now: a replacement web dyno takes traffic before the old stops.
    preboot: bool = False


@dataclass
class Tracked:
    """The manager's memory of one dyno it runs."""

    slot: Slot
    handle: DynoHandle
    state: DynoState
    started: float  # monotonic
    started_wall: datetime
    crashes: int = 0
    restart_at: float | None = None
    last_r14: float = field(default=-1e9)
    # When daily cycling restarts it: 24 h after its start plus a jitter of its own.
    cycle_at: float = float("inf")
    # Preboot: the dyno it replaces, still up and routed (its row stays) until this one is.
    outgoing: Tracked | None = None


def tcp_probe(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False


class DynoManager:
    """Example::

    manager = DynoManager(store, LocalBackend(...), blobs)
    manager.adopt()            # once, at start: dynos outlive the control plane
    while True:
        manager.reconcile()
    """

    def __init__(
        self,
        store: Store,
        backend: Backend,
        blobs: BlobStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        probe: Callable[[str, int], bool] = tcp_probe,
        events: Events | None = None,
        app_events: AppEvents | None = None,
        jitter: Callable[[], float] = random.random,
        drain_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.backend = backend
        self.blobs = blobs
        self._clock = clock
        self._wall = wall
        self._probe = probe
        # Lines for apps' log streams: heroku[web.1] events, and release-phase output.
        self.app_events = app_events or AppEvents()
        self._events = events or (self.app_events.system if app_events else _log_event)
        self._jitter = jitter
        # How long a replaced web dyno keeps serving in-flight requests before SIGTERM,
        # while the route feed (every 0.1 s) takes it out of the routers' tables.
        self.drain_seconds = drain_seconds
        self.tracked: dict[tuple[str, str], Tracked] = {}
        self.releases = Releases(lambda: datetime.fromtimestamp(self._wall(), UTC), self.app_events)
        self._release_phases: dict[str, threading.Thread] = {}
        self.one_offs: dict[str, DynoHandle] = {}
        self._stoppers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dyno-stop")

    # -- start-up --------------------------------------------------------------------------

    def adopt(self) -> None:
        """Take over dynos a previous control plane started, without restarting them."""
        with self.store.session() as db:
            rows = {row.id: row for row in db.scalars(select(Dyno))}
            desired = self._desired(db)
        for handle in self.backend.adopt():
            row = rows.get(handle.dyno_id)
            if row is not None and row.one_off:
                self.one_offs[handle.dyno_id] = handle
                continue
            slot = desired.get((handle.app_id, handle.name))
            status = self.backend.inspect(handle)
            if row is None or slot is None or not status.running:
                self.backend.stop(handle, STOP_GRACE)
                self.backend.remove(handle)
                continue
            known = {state.value for state in DynoState}
            state = DynoState(row.state) if row.state in known else DynoState.STARTING
            self.tracked[(handle.app_id, handle.name)] = Tracked(
                slot=slot if row.release_id == slot.release_id else _stale(slot, row),
                handle=handle,
                state=state,
                started=self._clock(),
                started_wall=row.updated_at,
            )

    # -- one pass --------------------------------------------------------------------------

    def reconcile(self) -> None:
        with self.store.session() as db:
            desired = self._desired(db)
            requests = self._requests(db)
            pending = self._pending_releases(db)
        for release_id in pending:
            self._start_release_phase(release_id)
        for key, tracked in list(self.tracked.items()):
            if key not in desired:
                self._retire(key, tracked)
        for key, slot in desired.items():
            current = self.tracked.get(key)
            if current is None:
                self._start(slot)
            else:
                self._step(current, slot, requests.get(current.handle.dyno_id))
        with self.store.session() as db:
            self._write_rows(db)
            self._one_off_pass(db)

    def _step(self, tracked: Tracked, slot: Slot, request: str | None) -> None:
        outgoing = tracked.outgoing
        if outgoing is not None and not self.backend.inspect(outgoing.handle).running:
            # prebooting, and the old dyno died meanwhile: nothing to keep routed
            tracked.outgoing = None
            self._stop_soon(outgoing)
        status = self.backend.inspect(tracked.handle)
        if tracked.state in (DynoState.STARTING, DynoState.UP) and not status.running:
            return self._on_exit(tracked, status.exit_code, status.oom_killed)
        if tracked.slot.release_id != slot.release_id:
            # up -> down -> starting: a new release restarts the formation
            return self._replace(tracked, slot, "Restarting")
        if self._clock() >= tracked.cycle_at:
            return self._replace(tracked, slot, "Cycling")
        if request or _restart_requested(slot, tracked):
            return self._replace(tracked, slot, "Restarting")
        if tracked.state == DynoState.STARTING:
            return self._on_starting(tracked)
        if tracked.state == DynoState.CRASHED:
            return self._on_crashed(tracked, slot)
        if tracked.state == DynoState.UP:
            return self._on_up(tracked, status.memory_bytes)
        return None

    def _on_starting(self, tracked: Tracked) -> None:
        handle = tracked.handle
        if handle.port is None or (handle.address and self._probe(handle.address, handle.port)):
            # starting -> up (a web dyno once it has bound $PORT)
            self._set_state(tracked, DynoState.UP)
            if tracked.outgoing is not None:
                # preboot: traffic moves to this dyno now; the old one drains, then stops
                self._stop_soon(tracked.outgoing)
                tracked.outgoing = None
        elif self._clock() - tracked.started > BOOT_TIMEOUT:
            # starting -> crashed: R10
            self._event(
                tracked,
                "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within "
                f"{BOOT_TIMEOUT:.0f} seconds of launch",
            )
            self._event(tracked, "Stopping process with SIGKILL")
            self.backend.stop(handle, 0)
            self._on_exit(tracked, 137, False)

    def _on_up(self, tracked: Tracked, memory: int | None) -> None:
        if tracked.crashes and self._clock() - tracked.started > STABLE_AFTER:
            tracked.crashes = 0
        quota = size_named(tracked.slot.size).memory_mb * 1024 * 1024
        if memory and memory > quota and self._clock() - tracked.last_r14 >= 20:
            tracked.last_r14 = self._clock()
            self._event(tracked, f"Process running mem={memory // 2**20}MB({memory / quota:.1%})")
            self._event(tracked, "Error R14 (Memory quota exceeded)")

    def _on_exit(self, tracked: Tracked, code: int | None, oom: bool) -> None:
        if oom:
            self._event(tracked, "Error R15 (Memory quota vastly exceeded)")
            self._event(tracked, "Stopping process with SIGKILL")
        self._event(tracked, f"Process exited with status {code if code is not None else 1}")
        # up -> crashed: any exit of a formation dyno is a crash, even status 0
        tracked.crashes += 1
        tracked.restart_at = self._clock() + cool_off(tracked.crashes)
        self._set_state(tracked, DynoState.CRASHED)

    def _on_crashed(self, tracked: Tracked, slot: Slot) -> None:
        if tracked.restart_at is not None and self._clock() >= tracked.restart_at:
            # crashed -> starting, after the cool-off
            self.backend.remove(tracked.handle)
            crashes = tracked.crashes
            self._start(slot, crashes=crashes, note="Restarting")
            # a prebooting replacement that crashed: the old dyno still serves meanwhile
            self.tracked[(slot.app_id, slot.name)].outgoing = tracked.outgoing

    def _replace(self, tracked: Tracked, slot: Slot, note: str) -> None:
        # As Heroku: the replacement starts as soon as SIGTERM is on its way to the old
        # dyno; for a moment both share the name. With preboot, an up web dyno keeps
        # serving (and its row stays) until the replacement is up.
        outgoing, tracked.outgoing = tracked.outgoing, None
        if slot.preboot and slot.type == "web" and tracked.state == DynoState.UP:
            if outgoing is not None:
                self._stop_soon(outgoing)
            outgoing = tracked
        else:
            self._stop_soon(tracked)
            if outgoing is not None and not slot.preboot:
                self._stop_soon(outgoing)
                outgoing = None
        self._start(slot, note=note)
        self.tracked[(slot.app_id, slot.name)].outgoing = outgoing

    def _retire(self, key: tuple[str, str], tracked: Tracked) -> None:
        if tracked.outgoing is not None:
            self._stop_soon(tracked.outgoing)
            tracked.outgoing = None
        self._stop_soon(tracked)
        del self.tracked[key]

    def _stop_soon(self, tracked: Tracked) -> None:
        """Stop in the background: a dyno may take its whole grace to exit, and the other
        dynos' passes must not wait for it. Its row is gone already, so routers stop
        sending it requests; it gets SIGTERM once they have had time to notice."""
        self._stoppers.submit(self._drain_then_stop, tracked)

    def _drain_then_stop(self, tracked: Tracked) -> None:
        if tracked.handle.port is not None:
            time.sleep(self.drain_seconds)
        self._stop(tracked)

    def wait_for_stops(self) -> None:
        """Tests and shutdown: let the background stops finish."""
        self._stoppers.shutdown(wait=True)
        self._stoppers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dyno-stop")

    def _stop(self, tracked: Tracked) -> None:
        if self.backend.inspect(tracked.handle).running:
            self._event(tracked, "Stopping all processes with SIGTERM")
            self.backend.stop(tracked.handle, STOP_GRACE)
            code = self.backend.inspect(tracked.handle).exit_code
            if code == 137:
                self._event(
                    tracked,
                    "Error R12 (Exit timeout) -> At least one process failed to exit within "
                    f"{STOP_GRACE:.0f} seconds of SIGTERM",
                )
                self._event(tracked, "Stopping remaining processes with SIGKILL")
            self._event(tracked, f"Process exited with status {code if code is not None else 143}")
        self.backend.remove(tracked.handle)

    def _start(self, slot: Slot, *, crashes: int = 0, note: str | None = None) -> None:
        size = size_named(slot.size)
        dyno_id = str(uuid.uuid4())
        env = {**slot.env, "DYNO": slot.name}
        if slot.metadata:
            env["HEROKU_DYNO_ID"] = dyno_id
        port = WEB_PORT if slot.type == "web" else None
        if port is not None:
            env["PORT"] = str(port)
        spec = DynoSpec(
            dyno_id=dyno_id,
            app_id=slot.app_id,
            app_name=slot.app_name,
            name=slot.name,
            release_version=slot.release_version,
            slug=slot.slug,
            command=slot.command,
            env=env,
            # The cgroup allows twice the quota: above the quota is R14, at twice it R15.
            memory_mb=size.memory_mb * 2,
            pids_max=size.pids,
            cpu_shares=size.cpu_shares,
            port=port,
        )
        handle = self.backend.start(spec)
        tracked = Tracked(
            slot=slot,
            handle=handle,
            state=DynoState.STARTING,
            started=self._clock(),
            started_wall=datetime.fromtimestamp(self._wall(), UTC),
            crashes=crashes,
            cycle_at=self._clock() + CYCLE_AFTER + self._jitter() * CYCLE_JITTER,
        )
        self.tracked[(slot.app_id, slot.name)] = tracked
        if note:
            self._event(tracked, note)
        self._event(tracked, "State changed from down to starting")
        self._event(tracked, f"Starting process with command `{slot.command}`")

    def _set_state(self, tracked: Tracked, state: DynoState) -> None:
        if tracked.state != state:
            self._event(tracked, f"State changed from {tracked.state} to {state}")
            tracked.state = state

    def _event(self, tracked: Tracked, text: str) -> None:
        self._events(tracked.slot.app_id, tracked.slot.name, text)

    # -- one-off dynos (`kiku run`) -------------------------------------------------------

    def _one_off_pass(self, db: Session) -> None:
        """Start asked-for one-offs, notice ended ones; one-offs are never restarted."""
        now = datetime.fromtimestamp(self._wall(), UTC)
        for row in db.scalars(select(Dyno).where(Dyno.one_off.is_(True))):
            handle = self.one_offs.get(row.id)
            if handle is None:
                if row.state == DynoState.STARTING and row.exit_code is None:
                    self._start_one_off(db, row, now)
                elif row.exit_code is not None and (now - row.updated_at).total_seconds() > 60:
                    db.delete(row)  # its exit code was there to be read for a minute
                continue
            if row.stop_requested:
                row.stop_requested = False
                self.backend.stop(handle, STOP_GRACE)
            status = self.backend.inspect(handle)
            if not status.running:
                row.exit_code = status.exit_code if status.exit_code is not None else 1
                row.state = DynoState.DOWN.value
                row.updated_at = now
                self._events(row.app_id, row.name, f"Process exited with status {row.exit_code}")
                self.backend.remove(handle)
                del self.one_offs[row.id]

    def _start_one_off(self, db: Session, row: Dyno, now: datetime) -> None:
        app = db.get(App, row.app_id)
        release = _current(db, app) if app else None
        if app is None or release is None or release.slug is None:
            row.exit_code, row.state, row.updated_at = 1, DynoState.CRASHED.value, now
            return
        size = size_named(row.size)
        spec = DynoSpec(
            dyno_id=row.id,
            app_id=app.id,
            app_name=app.name,
            name=row.name,
            release_version=release.version,
            slug=self.blobs.path(release.slug.blob_key),
            command=row.command,
            env={**release.config, **_metadata(app, release), **row.env, "DYNO": row.name},
            memory_mb=size.memory_mb * 2,
            pids_max=size.pids,
            cpu_shares=size.cpu_shares,
            attach=row.attach,
            tty=row.attach and row.tty,
        )
        self.one_offs[row.id] = self.backend.start(spec)
        row.state, row.updated_at = DynoState.UP.value, now
        row.release_id, row.release_version = release.id, release.version
        self._events(app.id, row.name, f"Starting process with command `{row.command}`")

    # -- the release phase -----------------------------------------------------------------

    def _pending_releases(self, db: Session) -> list[str]:
        query = select(Release.id).where(Release.status == "pending")
        return [rid for rid in db.scalars(query) if rid not in self._release_phases]

    def _start_release_phase(self, release_id: str) -> None:
        thread = threading.Thread(
            target=self._run_release_phase,
            args=(release_id,),
            name=f"release-{release_id[:8]}",
            daemon=True,
        )
        self._release_phases[release_id] = thread
        thread.start()

    def _run_release_phase(self, release_id: str) -> None:
        """A one-off `release.NNNN` with the new slug and config; its output is saved on
        the release as it comes (a push relays it), its status decides the release."""
        with self.store.session() as db:
            release = db.get(Release, release_id)
            app = db.get(App, release.app_id) if release else None
            if release is None or release.slug is None or app is None:
                return
            app_id, app_name, version = app.id, app.name, release.version
            command = release.slug.process_types.get(RELEASE_TYPE, "")
            slug = self.blobs.path(release.slug.blob_key)
            env = dict(release.config)
        lines: list[str] = []
        flushed = [0.0]
        name = one_off_name(RELEASE_TYPE)

        def emit(line: str) -> None:
            lines.append(line)
            self.app_events.publish(app_id, "app", name, line)
            if self._clock() - flushed[0] > 0.2:
                flushed[0] = self._clock()
                self._save_output(release_id, lines)

        self._events(app_id, name, f"Starting process with command `{command}`")
        self._events(app_id, name, "State changed from starting to up")
        try:
            code = run_to_completion(
                self.backend,
                app_id=app_id,
                app_name=app_name,
                kind=RELEASE_TYPE,
                name=name,
                command=command,
                slug=slug,
                release_version=version,
                env=env,
                emit=emit,
            )
        except Exception as exc:
            log.exception("release phase of %s failed to run", release_id)
            lines.append(f" !     The release command could not run: {exc}")
            code = 1
        self._events(app_id, name, f"Process exited with status {code}")
        ended = "complete" if code == 0 else "crashed"
        self._events(app_id, name, f"State changed from up to {ended}")
        with self.store.session() as db:
            release = db.get(Release, release_id)
            app = db.get(App, app_id)
            if release is not None and app is not None:
                output = "\n".join(lines) + ("\n" if lines else "")
                self.releases.finish_release_phase(db, app, release, ok=code == 0, output=output)

    def _save_output(self, release_id: str, lines: list[str]) -> None:
        with self.store.session() as db:
            release = db.get(Release, release_id)
            if release is not None:
                release.output = "\n".join(lines) + "\n"

    # -- desired state, from the store -----------------------------------------------------

    def _desired(self, db: Session) -> dict[tuple[str, str], Slot]:
        slots: dict[tuple[str, str], Slot] = {}
        for app in db.scalars(select(App)):
            release = _current(db, app)
            if release is None or release.slug is None:
                continue
            slug: Slug = release.slug
            formations = db.scalars(select(Formation).where(Formation.app_id == app.id))
            for formation in formations:
                command = slug.process_types.get(formation.type)
                if command is None:
                    continue
                for index in range(1, formation.quantity + 1):
                    name = f"{formation.type}.{index}"
                    slots[(app.id, name)] = Slot(
                        app_id=app.id,
                        app_name=app.name,
                        name=name,
                        type=formation.type,
                        command=command,
                        size=formation.size,
                        release_id=release.id,
                        release_version=release.version,
                        slug=self.blobs.path(slug.blob_key),
                        env={**release.config, **_metadata(app, release)},
                        restart_requested_at=formation.restart_requested_at,
                        metadata=RUNTIME_DYNO_METADATA in (release.features or []),
                        preboot=PREBOOT in (app.features or []),
                    )
        return slots

    def _requests(self, db: Session) -> dict[str, str]:
        """Restart and stop requests the API left on dyno rows; cleared once read."""
        found: dict[str, str] = {}
        for row in db.scalars(select(Dyno).where((Dyno.restart_requested) | (Dyno.stop_requested))):
            found[row.id] = "stop" if row.stop_requested else "restart"
            row.restart_requested = row.stop_requested = False
        return found

    def _write_rows(self, db: Session) -> None:
        formation_rows = select(Dyno).where(Dyno.one_off.is_(False))
        rows = {row.id: row for row in db.scalars(formation_rows)}
        now = datetime.fromtimestamp(self._wall(), UTC)
        live = set()
        for current in self.tracked.values():
            # While a replacement preboots, the row is still the old, routed dyno's.
            tracked = current.outgoing or current
            slot, handle = tracked.slot, tracked.handle
            live.add(handle.dyno_id)
            row = rows.get(handle.dyno_id)
            if row is None:
                row = Dyno(
                    id=handle.dyno_id,
                    app_id=slot.app_id,
                    name=slot.name,
                    created_at=tracked.started_wall,
                )
                # A replaced dyno's row goes: names are unique per app.
                for old in rows.values():
                    if old.app_id == slot.app_id and old.name == slot.name:
                        db.delete(old)
                        live.add(old.id)
                db.flush()
                db.add(row)
            if row.state != tracked.state.value:
                row.updated_at = now
            row.type, row.command, row.size = slot.type, slot.command, slot.size
            row.state = tracked.state.value
            row.release_id, row.release_version = slot.release_id, slot.release_version
            row.address, row.port = handle.address, handle.port
            if row.updated_at is None:
                row.updated_at = now
        for row_id, row in rows.items():
            if row_id not in live:
                db.delete(row)


def _current(db: Session, app: App) -> Release | None:
    return db.scalar(
        select(Release)
        .where(Release.app_id == app.id, Release.status == "succeeded")
        .order_by(Release.version.desc())
        .limit(1)
    )


def _metadata(app: App, release: Release) -> dict[str, str]:
    """Labs runtime-dyno-metadata (HEROKU_BEHAVIOUR §7.3), when the release was made with it."""
    if RUNTIME_DYNO_METADATA not in (release.features or []):
        return {}
    slug = release.slug
    return {
        "HEROKU_APP_ID": app.id,
        "HEROKU_APP_NAME": app.name,
        "HEROKU_RELEASE_CREATED_AT": release.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "HEROKU_RELEASE_VERSION": f"v{release.version}",
        "HEROKU_SLUG_COMMIT": (slug.commit or "") if slug else "",
        "HEROKU_SLUG_DESCRIPTION": release.description,
    }


def _restart_requested(slot: Slot, tracked: Tracked) -> bool:
    at = slot.restart_requested_at
    return at is not None and at > tracked.started_wall


def _stale(slot: Slot, row: Dyno) -> Slot:
    """An adopted dyno of an older release: reconcile will replace it."""
    return Slot(
        **{
            **slot.__dict__,
            "release_id": row.release_id or "",
            "release_version": row.release_version or 0,
        }
    )


def _log_event(app_id: str, process: str, text: str) -> None:
    log.info("heroku[%s]: %s", process, text)
