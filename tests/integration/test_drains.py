"""Log drains in a real `kiku server`: added with the CLI, fed by the app's stream over
syslog+tls to a receiver trusting the operator's CA (KIKU_DRAIN_CA_FILE), and loaded
again from the store when the server restarts."""

from __future__ import annotations

import json
from pathlib import Path

from kikuserver import KikuServer, kiku
from logs.receivers import SyslogReceiver, local_ca, server_context, wait_until

PASSWORD = "correct horse battery"


def test_drains_in_a_real_server(tmp_path: Path) -> None:
    ca = local_ca(tmp_path / "drain-ca")
    with SyslogReceiver(tls=server_context(ca)) as receiver:
        env = {"KIKU_DRAIN_CA_FILE": str(ca.ca_cert), "KIKU_DRAIN_ALLOW_PRIVATE": "1"}
        server = KikuServer(tmp_path / "data", env=env)
        server.start()
        try:
            token = server.login("drains@example.com", PASSWORD)
            env = {
                **server.env,
                "HOME": str(tmp_path),
                "KIKU_API_URL": server.url,
                "KIKU_API_KEY": token,
            }
            with server.client(token) as api:
                api.post("/apps", json={"name": "drained"}).raise_for_status()
            url = f"syslog+tls://localhost:{receiver.port}"
            added = kiku("drains:add", url, "-a", "drained", env=env)
            assert added.returncode == 0, added.stderr
            assert added.stdout.strip() == f"Successfully added drain {url}"
            listed = kiku("drains", "-a", "drained", "--json", env=env)
            [drain] = json.loads(listed.stdout)

            def said(text: str) -> list[str]:
                return [m for m in receiver.text() if text in m]

            wait_until(lambda: bool(said("Add drain syslog+tls")), what="the drain's own event")
            header, message = said("Add drain syslog+tls")[0].split(" - - ", 1)
            assert header.split(" ")[2:] == [drain["token"], "app", "api"]
            assert message == f"Add drain {url} by user drains@example.com"

            other = "https://user:pw@logs.invalid/in"
            assert kiku("drains:add", other, "-a", "drained", env=env).returncode == 0
            wait_until(lambda: bool(said("Add drain https://***@logs.invalid/in")))

            server.stop()
            server.start()  # the drain comes back from the store
            removed = kiku("drains:remove", other, "-a", "drained", env=env)
            assert removed.returncode == 0, removed.stderr
            wait_until(lambda: bool(said("Remove drain https://***@logs.invalid/in")))
            assert not said("pw@")
        finally:
            server.stop()
            server.reap_dynos()
