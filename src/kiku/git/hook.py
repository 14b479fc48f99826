"""The pre-receive hook: send the push to the builder over a local socket, relay its output.

It runs for every push, so it imports only the standard library and starts in
milliseconds; the build itself runs in the (already warm) platform process. Whatever it
prints, git shows as `remote:` lines. Its exit status accepts (0) or rejects the push.
"""

from __future__ import annotations

import json
import os
import socket
import sys

EXIT_MARK = "\x00exit "


def main() -> int:
    refs = [line.split() for line in sys.stdin.read().splitlines() if line.strip()]
    request = {
        "app_id": os.environ["KIKU_APP_ID"],
        "user_id": os.environ.get("KIKU_USER_ID") or None,
        "repo": os.path.abspath(os.environ.get("GIT_DIR", ".")),
        "refs": refs,
        "git_env": {k: v for k, v in os.environ.items() if k.startswith("GIT_")},
    }
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(os.environ["KIKU_BUILD_SOCKET"])
    except OSError as exc:
        print(f" !     The kiku builder is not reachable ({exc}); try again shortly.")
        return 1
    with connection, connection.makefile("rwb") as stream:
        stream.write(json.dumps(request).encode() + b"\n")
        stream.flush()
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith(EXIT_MARK):
                return int(line[len(EXIT_MARK) :])
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    print(" !     The kiku builder stopped before the build finished.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
