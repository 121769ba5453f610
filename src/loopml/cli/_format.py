"""Turning values into short, readable table cells (user data is never read as rich markup),
and the help-text and table helpers the command groups share."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

    from loopml.entities import RunInfo

__all__ = [
    "STATUS_STYLES",
    "cell",
    "format_ago",
    "format_duration",
    "format_number",
    "format_size",
    "format_time",
    "key_value_table",
    "print_parts",
    "reflow",
    "run_duration",
    "status_cell",
    "titled_table",
]

STATUS_STYLES = {"RUNNING": "cyan", "FINISHED": "green", "FAILED": "red", "KILLED": "yellow"}


def cell(value: object, style: str = "") -> Text:
    """A table cell holding ``value`` as literal text (``None`` shows as a dim dash)."""
    from rich.text import Text

    if value is None:
        return Text("-", style="dim")
    return Text(str(value), style=style)


def status_cell(status: str) -> Text:
    return cell(status, STATUS_STYLES.get(str(status), ""))


def format_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local time, to the second."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def format_ago(ms: int | None, now_ms: int | None = None) -> str:
    """How long ago, briefly: ``just now``, ``42s ago``, ``5m ago``, ``3h ago``, ``6d ago``;
    older than 30 days, the date."""
    if ms is None:
        return "-"
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    seconds = (now - ms) // 1000
    if seconds < 0 or seconds >= 30 * 86400:
        return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


def format_duration(ms: int) -> str:
    """``850ms``, ``4.2s``, ``3m 05s``, ``2h 01m``, ``3d 04h``."""
    ms = max(ms, 0)
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def run_duration(info: RunInfo) -> str:
    """How long the run took; for a run still going, how long it has been going (``…``)."""
    if info.end_time is not None:
        return format_duration(info.end_time - info.start_time)
    return format_duration(time.time_ns() // 1_000_000 - info.start_time) + "…"


def format_number(value: float, digits: int = 4) -> str:
    """A metric value with ``digits`` significant digits; integers stay whole."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}g}"


def format_size(size: int | None) -> str:
    """Bytes in decimal units: ``532 B``, ``1.2 kB``, ``3.4 MB``."""
    if size is None:
        return "-"
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


# -- shared by the command groups: help text and rendering ----------------------------------


def reflow(doc: str | None) -> str:
    """A command's docstring as help text: each paragraph's lines joined into one (the help
    formatter keeps line breaks), indented lines (examples) kept as they are."""
    import inspect

    paragraphs = []
    for block in inspect.cleandoc(doc or "").split("\n\n"):
        lines: list[str] = []
        for line in block.splitlines():
            if lines and not line.startswith(" ") and not lines[-1].startswith(" "):
                lines[-1] += " " + line
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def titled_table(title: str) -> Table:
    """A table whose title (literal text) is never wrapped to the width of narrow columns."""
    from rich.table import Table
    from rich.text import Text

    return Table(title=Text(title), title_justify="left", min_width=len(title))


def key_value_table(title: str | Text, rows: Sequence[tuple[str, Any]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=Text(title) if isinstance(title, str) else title,
        title_justify="left",
        show_header=False,
        box=None,
        padding=(0, 2),
    )
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(cell(key), value if isinstance(value, Text) else cell(value))
    return table


def print_parts(parts: Sequence[RenderableType]) -> None:
    for index, part in enumerate(parts):
        if index:
            print()
        from loopml.cli._common import print_table

        print_table(part)
