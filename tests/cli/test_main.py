"""The `kiku` group: command modules, aliases, the context object."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiku.cli.main import build_cli

ALIASES = {
    "login": "auth:login",
    "logout": "auth:logout",
    "whoami": "auth:whoami",
    "create": "apps:create",
    "info": "apps:info",
    "open": "apps:open",
    "destroy": "apps:destroy",
    "apps:list": "apps",
}


def test_aliases_run_the_same_command_but_stay_out_of_help() -> None:
    cli = build_cli(("auth", "apps", "git"))
    for alias, name in ALIASES.items():
        assert cli.commands[alias].callback is cli.commands[name].callback
        assert cli.commands[alias].hidden and not cli.commands[name].hidden
    help_text = CliRunner().invoke(cli, ["--help"]).output
    assert "apps:info" in help_text and "  info " not in help_text


def test_a_module_not_written_yet_is_skipped() -> None:
    cli = build_cli(("auth", "no_such_topic"))
    assert "auth:login" in cli.commands


def test_a_module_with_a_broken_import_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fakecommands"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "broken.py").write_text("import no_such_dependency_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("kiku.cli.main.COMMANDS_PACKAGE", "fakecommands")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_anywhere"):
        build_cli(("broken",))
    sys.modules.pop("fakecommands", None)
