"""Where the CLI's user-visible output is defined; the only module that knows Rich.

Data a command was asked for goes to stdout; narration (`Creating ⬢ app... done`),
warnings, errors and debug traces go to stderr, as Heroku's CLI does, so
`kiku apps --json | jq` stays clean.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

APP_STYLE = "magenta"
HEXAGON = "⬢"
# Colours for labelled streams (one per process in `kiku local`); red is for errors.
LABEL_STYLES = ("cyan", "yellow", "green", "magenta", "blue", "bright_cyan", "bright_yellow")
TAG_STYLES = {"OKAY": "green", "DONE": "cyan", "WARN": "yellow", "FAIL": "red"}


@dataclass
class Action:
    """What `Printer.action` prints after the `...` once the block ends."""

    status: str = "done"
    app: str | None = None


class Printer:
    """Turns command results into lines on the terminal.

    `out`/`err` default to whatever `sys.stdout`/`sys.stderr` are when printing (so
    Click's test runner captures them); `color=False` forces plain text.
    """

    def __init__(
        self, out: IO[str] | None = None, err: IO[str] | None = None, color: bool | None = None
    ) -> None:
        self._files = (out, err)
        self._color = color
        self._consoles: dict[bool, Console] = {}
        self._forced: Console | None = None

    def _console(self, stderr: bool) -> Console:
        # Built on first use, not in __init__: Rich decides on colour when the console
        # is made, and only then is the real (or test-captured) stream in place.
        if stderr not in self._consoles:
            self._consoles[stderr] = Console(
                file=self._files[stderr],
                stderr=stderr,
                color_system="auto" if self._color is not False else None,
                force_terminal=True if self._color else None,
                no_color=self._color is False,
                highlight=False,
                markup=False,
                emoji=False,
                soft_wrap=True,  # never wrap tokens, URLs or JSON at the terminal width
            )
        return self._consoles[stderr]

    def _print(self, text: str | Text, stderr: bool = False, end: str = "\n") -> None:
        self._console(stderr).print(text, end=end)

    # -- data (stdout) -------------------------------------------------------------

    def line(self, text: str = "") -> None:
        """One plain line of output."""
        self._print(text)

    def raw(self, text: str, end: str = "\n") -> None:
        """`text` exactly as given (no tab expansion, no styling): values, build output."""
        out = self._files[0] or sys.stdout
        out.write(text + end)
        out.flush()

    def header(self, title: str) -> None:
        """A section title: `=== title`."""
        self._print(Text(f"=== {title}", style="bold"))

    def json(self, data: Any) -> None:
        """Machine-readable output for `--json`."""
        self._print(json.dumps(data, indent=2, ensure_ascii=False))

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
    ) -> None:
        """A compact table: bold headers, no borders; the columns in `right` (numbers) are
        aligned right. Never squeezed to the terminal: cells stay whole."""
        table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
        for index, header in enumerate(headers):
            table.add_column(header, justify="right" if index in right else "left", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        console = self._console(False)
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        width = console.width
        console.width = max(width, natural)  # print() never goes wider than the console
        try:
            console.print(table)
        finally:
            console.width = width

    def key_values(self, rows: Sequence[tuple[str, str | Sequence[str]]]) -> None:
        """Aligned `Key:   value` lines; a list value continues under the first."""
        width = max((len(key) for key, _ in rows), default=0) + 1
        for key, value in rows:
            values = [value] if isinstance(value, str) else list(value) or [""]
            line = Text(f"{key + ':':<{width}} ", style="bold").append(values[0], style="")
            self._print(line)
            for more in values[1:]:
                self._print(" " * (width + 1) + more)

    def columns(self, rows: Sequence[Sequence[str]]) -> None:
        """Rows of cells padded so the columns line up (no borders, like Heroku)."""
        if not rows:
            return
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            self._print("  ".join(cells).rstrip())

    def styled(self, text: Text, force_color: bool = False) -> None:
        """A line with its own styles; `force_color` keeps them when output is piped."""
        if force_color and not self._console(False).is_terminal:
            if self._forced is None:
                out = self._files[0] or sys.stdout
                self._forced = Console(file=out, force_terminal=True, highlight=False)
            self._forced.print(text, soft_wrap=True, markup=False, emoji=False)
            return
        self._print(text)

    def is_terminal(self) -> bool:
        return self._console(False).is_terminal and self._color is not False

    def labelled(
        self, label: str, text: str, style: str, separator: str = " | ", stderr: bool = False
    ) -> None:
        """`label | text` with the label in `style`; ANSI colours in `text` are kept."""
        line = Text(label + separator, style=style).append_text(Text.from_ansi(text))
        self._print(line, stderr=stderr)

    # -- narration (stderr) ----------------------------------------------------------

    def tagged(self, tag: str, message: str) -> None:
        """`[DONE] message`, foreman's status lines; the tag coloured by `TAG_STYLES`."""
        line = Text(f"[{tag}]", style=TAG_STYLES.get(tag, "bold")).append(f" {message}")
        self._print(line, stderr=True)

    def app_name(self, name: str) -> Text:
        return Text(f"{HEXAGON} {name}", style=APP_STYLE)

    @contextmanager
    def action(self, verb: str, app: str | None = None, suffix: str = "") -> Iterator[Action]:
        """`Creating ⬢ app...` now, then `done` (or `!` if the block raised)."""
        start = Text(verb)
        if app is not None:
            start.append(" ").append_text(self.app_name(app))
        self._print(start.append(f"{suffix}..."), stderr=True, end="")
        result = Action()
        try:
            yield result
        except BaseException:
            self._print(" !", stderr=True)
            raise
        end = Text(f" {result.status}")
        if result.app is not None:
            end.append(", ").append_text(self.app_name(result.app))
        self._print(end, stderr=True)

    def info(self, message: str) -> None:
        """A status line that is not the command's data."""
        self._print(message, stderr=True)

    def warn(self, message: str) -> None:
        for line in message.splitlines() or [""]:
            self._print(Text(" ›   ").append(Text(line, style="yellow")), stderr=True)

    def error(self, message: str, error_id: str | None = None) -> None:
        """`Error: message` and, when the API named it, `Error ID: id`."""
        self._print(Text("Error: ", style="bold red").append(message), stderr=True)
        if error_id:
            self._print(Text(f"Error ID: {error_id}", style="dim"), stderr=True)

    def debug(self, line: str) -> None:
        """A wire trace line (KIKU_DEBUG)."""
        self._print(Text(line, style="dim"), stderr=True)


def label_style(index: int) -> str:
    """The `index`th of `LABEL_STYLES`, round and round: a stable colour per stream."""
    return LABEL_STYLES[index % len(LABEL_STYLES)]


def human_size(size: int) -> str:
    """Bytes in Heroku's (JEDEC) units: `0 B`, `512 KB`, `3 MB`."""
    value, units = float(size), ["B", "KB", "MB", "GB", "TB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{value:.0f} {units[0]}"


def time_ago(timestamp: str | None, now: datetime | None = None) -> str:
    """An API timestamp as Heroku's CLI shows it: `2024/05/01 12:00:00 +0000 (~ 5m ago)`.

    Local time; the `(~ …)` part only within 25 hours, as Heroku's `ago()`. Text that is
    not an ISO 8601 timestamp is returned unchanged.
    """
    if not timestamp:
        return ""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    shown = moment.astimezone().strftime("%Y/%m/%d %H:%M:%S %z")
    elapsed = int((now - moment).total_seconds())
    if elapsed <= 0:
        return f"{shown} (~ 0s ago)"
    if elapsed < 60:
        return f"{shown} (~ {elapsed}s ago)"
    if elapsed < 60 * 60:
        return f"{shown} (~ {elapsed // 60}m ago)"
    if elapsed < 60 * 60 * 25:
        return f"{shown} (~ {elapsed // 3600}h ago)"
    return shown
