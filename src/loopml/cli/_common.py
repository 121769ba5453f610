"""What every command shares: the global state, the client, output helpers and error mapping.

This is the one place that turns exceptions into exit codes:

=====  ==========================================================================
code   meaning
=====  ==========================================================================
0      success
1      data broke validation rules (DataValidationError: ``data add`` refused a version,
       ``data validate`` found failures), any other loopml error, or an internal error
2      bad input: InvalidArgumentError (FilterSyntaxError included), usage errors
3      not found: NotFoundError (experiment, run, artifact)
4      conflict: AlreadyExistsError, ConflictError (ParamConflictError, InvalidStateError)
=====  ==========================================================================

Output rules: results go to stdout (rich tables, or plain JSON with ``--json``); messages,
progress and errors go to stderr. Rich decides on colour itself, so ``NO_COLOR`` and non-TTY
output are honoured.

JSON rules: entities become objects with their field names as keys, in field order (a
``Metric`` becomes ``{"key", "value", "timestamp", "step"}``); enums become their value;
non-finite floats, which JSON cannot hold, become the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (Python's ``float()`` reads them back), so the output is always strict JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from enum import Enum
from os import PathLike
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from loopml.errors import (
    AlreadyExistsError,
    ConflictError,
    DataValidationError,
    InvalidArgumentError,
    LoopmlError,
    NotFoundError,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from loopml.tracking.client import Client

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_ERROR",
    "EXIT_INVALID",
    "EXIT_NOT_FOUND",
    "JsonFlag",
    "LoopmlGroup",
    "State",
    "exit_code_for",
    "get_client",
    "get_state",
    "message",
    "output_width",
    "print_json",
    "print_table",
    "to_jsonable",
    "widest_fitting",
]

EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4


@dataclasses.dataclass
class State:
    """The root options, stored on the command context for every command."""

    tracking_uri: str | None = None
    debug: bool = False


def get_state(ctx: typer.Context) -> State:
    return ctx.find_object(State) or State()


def get_client(ctx: typer.Context) -> Client:
    """A client for the store the root options (or ``LOOPML_TRACKING_URI``) name.

    The import is deferred so that ``loopml --help`` never loads the store machinery.
    """
    from loopml.tracking.client import Client

    return Client(get_state(ctx).tracking_uri)


# -- errors ------------------------------------------------------------------------------------


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an exception a command raised."""
    if isinstance(exc, DataValidationError):  # the data has problems, the call was fine
        return EXIT_ERROR
    if isinstance(exc, InvalidArgumentError):
        return EXIT_INVALID
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, AlreadyExistsError | ConflictError):
        return EXIT_CONFLICT
    return EXIT_ERROR


def _report(exc: Exception, debug: bool) -> NoReturn:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, LoopmlError):
        _error_line("Error: ", exc.message)
    else:
        detail = str(exc)
        _error_line(
            "Internal error: ", f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        )
        if not debug:
            message("Rerun with --debug to see the traceback.")
    raise typer.Exit(exit_code_for(exc))


def _cli_exceptions() -> tuple[type[BaseException], ...]:
    """Exceptions the command-line framework handles itself (usage errors, exits, aborts)."""
    base = getattr(typer, "TyperException", None)
    if base is None:  # older typer builds on click
        from click import ClickException

        base = ClickException
    return (typer.Exit, typer.Abort, base)


class LoopmlGroup(TyperGroup):
    """The root command group: runs the command and maps what it raises to an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except _cli_exceptions():
            raise
        except Exception as exc:
            _report(exc, get_state(ctx).debug)


# -- output ------------------------------------------------------------------------------------


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr)


def _error_line(prefix: str, text: str) -> None:
    from rich.text import Text

    line = Text(prefix, style="bold red")
    line.append(text)
    _console(stderr=True).print(line, soft_wrap=True)


def message(text: str | RenderableType, *, style: str | None = None) -> None:
    """A note for the person at the terminal (stderr; plain text, no markup)."""
    from rich.text import Text

    renderable = Text(text, style=style or "") if isinstance(text, str) else text
    _console(stderr=True).print(renderable, soft_wrap=isinstance(text, str))


def _natural_width(renderable: RenderableType) -> int:
    """The width ``renderable`` takes when nothing constrains it."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=10_000)
    return Measurement.get(console, console.options, renderable).maximum


def output_width() -> int | None:
    """The width tables must fit on stdout: the terminal's (or ``COLUMNS``), else unbounded."""
    console = _console(stderr=False)
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console.width
    return None


def widest_fitting(
    build: Callable[[int], RenderableType], count: int
) -> tuple[RenderableType, int]:
    """``build(n)`` for the largest ``n <= count`` whose output fits :func:`output_width`.

    For tables with optional columns: fewer columns beat columns squeezed to nothing.
    """
    width = output_width()
    renderable = build(count)
    if width is None:
        return renderable, count
    while count > 0 and _natural_width(renderable) > width:
        count -= 1
        renderable = build(count)
    return renderable, count


def print_table(*renderables: RenderableType) -> None:
    """Print tables (or other rich renderables) to stdout.

    In a terminal they fit its width; piped or redirected, they keep their natural width
    (no wrapping at an arbitrary 80 columns) unless ``COLUMNS`` says otherwise.
    """
    from rich.console import Console

    console = _console(stderr=False)
    if output_width() is None and renderables:
        widest = max(_natural_width(r) for r in renderables)
        console = Console(width=max(widest, console.width))
    for renderable in renderables:
        console.print(renderable)


def _float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for entities, enums, named tuples, mappings and sequences."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return _float(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: to_jsonable(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, PathLike):
        return str(value)
    return str(value)


def print_json(value: Any) -> None:
    """Write ``value`` as strict, indented JSON to stdout (no markup, no colour)."""
    text = json.dumps(to_jsonable(value), indent=2, ensure_ascii=False, allow_nan=False)
    sys.stdout.write(text + "\n")


#: the ``--json`` flag every listing command takes
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead of a table.")]
