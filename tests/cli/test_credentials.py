"""Credentials in netrc: our one entry changes, everything else in the file stays."""

from __future__ import annotations

import netrc
import stat
from pathlib import Path

import pytest

from kiku.cli.credentials import Credentials, NetrcCredentials, machine_for

OTHERS = """\
# my other logins
machine api.heroku.com
  login me@example.com
  password heroku-token
machine github.com login octo password "gh token"

macdef init
machine fake inside a macro

default login anonymous password guest
"""


@pytest.mark.parametrize(
    ("url", "machine"),
    [
        ("http://127.0.0.1:5100", "127.0.0.1:5100"),
        ("https://kiku.example.com", "kiku.example.com"),
        ("https://kiku.example.com:443/", "kiku.example.com"),
        ("http://localhost:80", "localhost"),
        ("http://[::1]:5100", "[::1]:5100"),
    ],
)
def test_machine_is_the_api_host_and_port(url: str, machine: str) -> None:
    assert machine_for(url) == machine


def test_save_creates_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / ".netrc"
    NetrcCredentials(path, "127.0.0.1:5100").save("dev@example.com", "tok-1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "machine 127.0.0.1:5100\n  login dev@example.com\n  password tok-1\n"
    assert NetrcCredentials(path, "127.0.0.1:5100").load() == Credentials(
        "dev@example.com", "tok-1"
    )


def test_save_keeps_every_other_entry_and_comment(tmp_path: Path) -> None:
    path = tmp_path / ".netrc"
    path.write_text(OTHERS)
    path.chmod(0o644)
    NetrcCredentials(path, "127.0.0.1:5100").save("dev@example.com", "tok-1")
    text = path.read_text()
    assert text.startswith(OTHERS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parsed = netrc.netrc(str(path))
    assert parsed.authenticators("api.heroku.com") == ("me@example.com", "", "heroku-token")
    assert parsed.authenticators("github.com") == ("octo", "", "gh token")
    assert parsed.authenticators("127.0.0.1:5100") == ("dev@example.com", "", "tok-1")


def test_save_replaces_only_our_entry_in_place(tmp_path: Path) -> None:
    path = tmp_path / ".netrc"
    path.write_text(
        "machine 127.0.0.1:5100\n  login old@example.com\n  password old-token\n" + OTHERS
    )
    store = NetrcCredentials(path, "127.0.0.1:5100")
    store.save("new@example.com", "new-token")
    assert path.read_text() == (
        "machine 127.0.0.1:5100\n  login new@example.com\n  password new-token\n" + OTHERS
    )
    assert store.load() == Credentials("new@example.com", "new-token")


def test_remove_drops_only_our_entry(tmp_path: Path) -> None:
    path = tmp_path / ".netrc"
    ours = "machine 127.0.0.1:5100 login dev@example.com password tok-1\n"
    path.write_text(OTHERS.replace("macdef init", ours + "macdef init"))
    store = NetrcCredentials(path, "127.0.0.1:5100")
    assert store.remove() is True
    assert path.read_text() == OTHERS
    assert store.load() is None
    assert store.remove() is False


def test_a_machine_named_inside_a_macro_is_not_an_entry(tmp_path: Path) -> None:
    path = tmp_path / ".netrc"
    path.write_text(OTHERS)
    store = NetrcCredentials(path, "fake")
    assert store.remove() is False
    assert path.read_text() == OTHERS


def test_missing_file_means_no_credentials(tmp_path: Path) -> None:
    assert NetrcCredentials(tmp_path / ".netrc", "127.0.0.1:5100").load() is None
