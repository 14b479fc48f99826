"""The dyno shim: a tiny detached supervisor that outlives the control plane.

Run as `python -I -S shim.py <dyno-state-dir>/shim.json` (stdlib only, no kiku imports, so
it starts in a few ms and keeps running across kiku upgrades). It forks; the first process
prints "<pid> <starttime>" of the second and exits, so the shim is nobody's child but init's
and kiku keeps no pipe to it. The shim then:

1. makes its own session and ignores SIGTERM/SIGINT/SIGHUP (stop() signals the dyno's
   processes, never the shim; the shim ends when the sandbox does), except that an
   attached one-off's shim still waiting for its client ends on SIGTERM (exit 143);
2. for attached dynos, listens on `attach.sock` and waits for one client, to which it sends
   (SCM_RIGHTS) the client ends of the dyno's stdio: a pty master (tty) or two pipes;
3. starts the sandbox: before exec, the child joins the dyno's cgroups, enters a private
   mount namespace and binds the sandbox's sources under a tmpfs at the stage directory
   (see sandbox.py: the dyno uid could not reach them where they are), and inherits the
   small files bwrap copies in as fds; output goes to `log` unless attached;
4. writes `sandbox.json` (pid and start time of bwrap), waits, and writes `exit`:
   {"code": N, "oom_killed": bool, "reason": ...}, atomically.
"""

from __future__ import annotations

# Only what the first process needs is imported up front: the shim's start is on every
# dyno's boot path (subprocess alone costs ~20 ms; the child forks and execs by hand).
import json
import os
import signal
import sys
import time
from typing import Any

CLONE_NEWNS = 0x00020000
LOG_ROTATE = 8 << 20  # bytes of output kept in `log` before it moves to `log.1`
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18


def starttime(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def write_json(path: str, data: dict[str, Any]) -> None:
    partial = path + ".partial"
    with open(partial, "w") as f:
        json.dump(data, f)
    os.replace(partial, path)


def oom_kills(path: str | None) -> int:
    if not path:
        return 0
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except OSError:
        pass
    return 0


class Stopped(Exception):
    """SIGTERM while waiting for the client: stop() ends a one-off nobody attached to."""


def stopped(signum: int, frame: object) -> None:
    raise Stopped


def window_size(env: dict[str, str]) -> tuple[int, int] | None:
    """The terminal size the client announced (LINES, COLUMNS), for the pty to start with;
    later changes come from the client through the pty master (TIOCSWINSZ)."""
    try:
        rows, columns = int(env["LINES"]), int(env["COLUMNS"])
    except (KeyError, ValueError):
        return None
    return (rows, columns) if 0 < rows < 65536 and 0 < columns < 65536 else None


def await_client(
    state: str, mode: str, timeout: float, size: tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """Wait for the attaching client; give it its ends; return the dyno's (stdin, stdout).
    None when nobody came in time; raises Stopped on SIGTERM while waiting."""
    import socket

    path = os.path.join(state, "attach.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path + ".partial")
    os.chmod(path + ".partial", 0o600)
    os.replace(path + ".partial", path)
    server.listen(1)
    server.settimeout(timeout)
    try:
        conn, _ = server.accept()
    except TimeoutError:
        return None
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.close()
        os.unlink(path)
    with conn:
        if mode == "tty":
            master, slave = os.openpty()
            if size is not None:
                import fcntl
                import struct
                import termios

                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
            socket.send_fds(conn, [b"tty"], [master])
            os.close(master)
            return slave, slave
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        socket.send_fds(conn, [b"pipe"], [stdin_w, stdout_r])
        os.close(stdin_w)
        os.close(stdout_r)
        return stdin_r, stdout_w


def stage(directory: str, binds: list[list[str]]) -> None:
    """In a private mount namespace: a tmpfs at `directory`, each source bound under it
    ([name, source]), or an overlay of a lower and an upper directory ([name, lower, upper,
    work]). The mounts live as long as the dyno's namespaces, and nowhere else."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    check(libc.unshare(CLONE_NEWNS), "unshare")
    check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    check(libc.mount(b"kiku", directory.encode(), b"tmpfs", 0, b"mode=0755"), "stage tmpfs")
    for name, *sources in binds:
        target = os.path.join(directory, name)
        os.mkdir(target)
        if len(sources) == 3:
            options = "lowerdir={},upperdir={},workdir={}".format(*sources)
            check(libc.mount(b"kiku", target.encode(), b"overlay", 0, options.encode()), name)
        else:
            flags = MS_BIND | MS_REC
            check(libc.mount(sources[0].encode(), target.encode(), None, flags, None), name)


def copy_log(pipe: int, path: str, rotate_at: int = LOG_ROTATE) -> None:
    """Copy the dyno's output to `path` as `<unix time> <line>` rows until every process of
    the dyno closed it. Lines are stamped as they arrive (the logplex may read them much
    later, e.g. after a control-plane restart); a partial line waits up to 0.5 s for its
    end. The file is rotated to `path.1` past `rotate_at` bytes; the logplex follows both."""
    import select

    out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    size = os.fstat(out).st_size
    rest = b""
    while True:
        if rest and not select.select([pipe], [], [], 0.5)[0]:
            chunk = b"\n"  # the partial line has waited long enough
        else:
            chunk = os.read(pipe, 65536)
            if not chunk:
                break
        stamp = b"%.6f " % time.time()
        rows = (rest + chunk).split(b"\n")
        rest = rows.pop()
        if len(rest) > 65536:
            rows.append(rest)
            rest = b""
        if not rows:
            continue
        block = b"".join(stamp + row.rstrip(b"\r") + b"\n" for row in rows)
        os.write(out, block)
        size += len(block)
        if size > rotate_at:
            os.replace(path, path + ".1")
            os.close(out)
            out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            size = 0
    if rest:
        os.write(out, b"%.6f " % time.time() + rest + b"\n")
    os.close(out)
    os.close(pipe)


def run(config: dict[str, Any]) -> None:
    state = config["state_dir"]
    mode = config["attach"]
    log_pipe = -1
    if mode:
        size = window_size(config["env"])
        stdio = await_client(state, mode, config["attach_timeout"], size)
        if stdio is None:
            write_json(os.path.join(state, "exit"), {"code": 1, "reason": "attach_timeout"})
            return
        stdin, stdout = stdio
    else:
        stdin = os.open(os.devnull, os.O_RDONLY)
        log_pipe, stdout = os.pipe()

    inherited = []
    for path, number in config["fds"]:
        fd = os.open(path, os.O_RDONLY)
        os.dup2(fd, number)
        os.close(fd)
        inherited.append(number)

    def enter() -> None:
        """In the child, before exec."""
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(stdout, 2)
        # Back to default dispositions: ignored signals would stay ignored across exec.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for procs in config["cgroup_procs"]:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        stage(config["stage_dir"], config["stage_binds"])
        if mode == "tty":
            import fcntl
            import termios

            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    pid = os.fork()
    if pid == 0:
        try:
            enter()
            os.execve(config["argv"][0], config["argv"], config["env"])
        except BaseException as exc:
            os.write(2, f"kiku: the dyno could not start: {exc}\n".encode())
        finally:
            os._exit(127)
    for fd in {stdin, stdout, *inherited}:
        os.close(fd)
    write_json(os.path.join(state, "sandbox.json"), {"pid": pid, "start": starttime(pid)})
    if not mode:
        copy_log(log_pipe, config["log"])
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code < 0:
        code = 128 - code
    result = {"code": code, "oom_killed": oom_kills(config["oom_control"]) > 0, "at": time.time()}
    write_json(os.path.join(state, "exit"), result)


def main() -> None:
    with open(sys.argv[1]) as f:
        config = json.load(f)
    # Set before the fork, so the shim never has the default (fatal) disposition.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if config["attach"]:
        # Until a client comes there is no sandbox and nothing in the dyno's cgroups: the
        # shim is all there is to stop, so SIGTERM ends the wait (and only the wait).
        signal.signal(signal.SIGTERM, stopped)
    pid = os.fork()
    if pid:
        print(pid, starttime(pid), flush=True)
        os._exit(0)
    try:  # from here on: a SIGTERM may come as soon as the pid is printed
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        run(config)
    except Stopped:
        write_json(
            os.path.join(config["state_dir"], "exit"),
            {"code": 143, "reason": "stopped before a client attached", "at": time.time()},
        )
    except Exception as exc:
        write_json(
            os.path.join(config["state_dir"], "exit"),
            {"code": 1, "reason": f"shim: {exc!r}", "at": time.time()},
        )


if __name__ == "__main__":
    main()
