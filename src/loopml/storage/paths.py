"""Checks for logical artifact paths.

A *logical artifact path* names a file or folder inside a run's artifact tree. It is always
relative and ``/``-separated, whatever the operating system. :func:`validate_artifact_path`
is the one place that decides whether such a path is acceptable; every layer that takes an
artifact path from a caller (the Python API, the REST server, the CLI) goes through it.

Rules (anything not listed is allowed and returned unchanged, including unicode, emoji,
right-to-left marks, combining marks, spaces and the characters ``%``, ``#`` and ``?``):

* it must be a ``str`` and not empty (unless ``allow_empty=True``, which returns ``""``);
* at most :data:`MAX_PATH_CHARS` characters, and every segment at most
  :data:`MAX_SEGMENT_BYTES` bytes once encoded as UTF-8 (lone surrogates are refused);
* no NUL or other control character (Unicode category ``Cc``), no backslash;
* not absolute (``/x``) and no Windows drive prefix (``C:``, ``c:/x``, ``C:x``);
* no ``..`` or ``.`` segment and no empty segment (``a//b``);
* no segment that, URL-decoded up to three times, becomes ``..`` or ``.`` or contains ``/``,
  ``\\`` or a control character (this catches ``..%2f``, ``%2e%2e`` and ``%252e%252e%252f``);
* a single trailing slash is allowed as folder notation and is stripped (``"a/b/"`` gives
  ``"a/b"``); anything more (``"a/b//"``) is an empty segment and is refused.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

from loopml.errors import InvalidArgumentError, UnsafePathError

__all__ = [
    "MAX_PATH_CHARS",
    "MAX_SEGMENT_BYTES",
    "join_under",
    "local_path",
    "validate_artifact_path",
]

logger = logging.getLogger(__name__)

MAX_PATH_CHARS = 1000
"""The longest logical path accepted, in characters."""

MAX_SEGMENT_BYTES = 255
"""The longest path segment accepted, in UTF-8 bytes (the usual file-name limit)."""

_DECODE_ROUNDS = 3
#: paths made only of ASCII letters, digits, '.', '_' and '-', no segment starting with '.':
#: nothing in them can be refused, so they skip the full check (most paths are like this)
_PLAIN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}(?:/[A-Za-z0-9_-][A-Za-z0-9._-]{0,254})*")
_DRIVE = re.compile(r"[A-Za-z]:")
_SHOWN_CHARS = 120


def _refuse(field: str, value: object, reason: str) -> UnsafePathError:
    """Build the error for a refused path; long values are shortened in the message."""
    shown = repr(value)
    if len(shown) > _SHOWN_CHARS:
        shown = shown[:_SHOWN_CHARS] + "...'"
    return UnsafePathError(f"Unsafe {field} {shown}: {reason}", field=field, reason=reason)


def _has_control(text: str) -> bool:
    """True if ``text`` holds NUL or any other control character."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def _whole_path_problem(path: str) -> str | None:
    """The reason the path as a whole is refused, or ``None``."""
    if len(path) > MAX_PATH_CHARS:
        return f"longer than {MAX_PATH_CHARS} characters ({len(path)})"
    if _has_control(path):
        return "contains a NUL or control character"
    if "\\" in path:
        return "contains a backslash; use '/' to separate folders"
    if path.startswith("/"):
        return "is absolute; artifact paths must be relative"
    if _DRIVE.match(path):
        return "starts with a Windows drive letter"
    return None


def _decoded_segment_problem(segment: str) -> str | None:
    """The reason a segment is refused once percent-decoded, or ``None``."""
    decoded = segment
    for _ in range(_DECODE_ROUNDS):
        previous, decoded = decoded, unquote(decoded, errors="surrogateescape")
        if decoded == previous:
            return None
        if decoded in ("..", "."):
            return f"segment {segment!r} is percent-encoded {decoded!r}"
        if "/" in decoded or "\\" in decoded or _has_control(decoded):
            return f"segment {segment!r} hides a separator or control character in percent-encoding"
    return None


def _segment_problem(segment: str) -> str | None:
    """The reason one ``/``-separated segment is refused, or ``None``."""
    if segment == "":
        return "has an empty segment ('//')"
    if segment in ("..", "."):
        return f"has a {segment!r} segment"
    try:
        size = len(segment.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid unicode (lone surrogate)"
    if size > MAX_SEGMENT_BYTES:
        return f"has a segment longer than {MAX_SEGMENT_BYTES} UTF-8 bytes ({size})"
    if "%" in segment:
        return _decoded_segment_problem(segment)
    return None


def validate_artifact_path(
    path: str, *, field: str = "artifact path", allow_empty: bool = False
) -> str:
    """Check a logical artifact path and return it (one trailing slash stripped).

    Args:
        path: The relative, ``/``-separated path to check.
        field: How to name the value in the error message (e.g. ``"artifact_path"``).
        allow_empty: Accept ``""`` (meaning "the root folder") and return ``""``.

    Returns:
        The path unchanged, except that a single trailing ``/`` is removed.

    Raises:
        UnsafePathError: The path breaks one of the rules in this module's docstring; the
            message names ``field``, shows the value and gives the reason.
    """
    if not isinstance(path, str):
        raise _refuse(field, path, f"must be a string, not {type(path).__name__}")
    if len(path) <= MAX_PATH_CHARS and _PLAIN.fullmatch(path):
        return path
    if path == "":
        if allow_empty:
            return ""
        raise _refuse(field, path, "must not be empty")
    trimmed = path[:-1] if path.endswith("/") else path
    problem = _whole_path_problem(path)
    if problem is None:
        problem = next(filter(None, map(_segment_problem, trimmed.split("/"))), None)
    if problem is not None:
        logger.debug("Refused %s %r: %s", field, path[:_SHOWN_CHARS], problem)
        raise _refuse(field, path, problem)
    return trimmed


def join_under(root: str | os.PathLike[str], logical: str) -> str:
    """Build the local path for a logical artifact path inside the folder ``root``.

    The logical path is validated first; the result is then resolved with
    :func:`os.path.realpath` and must still lie inside the resolved ``root`` (this also
    catches a symlink inside ``root`` that points elsewhere).

    Args:
        root: The local folder everything must stay inside. It need not exist yet.
        logical: A logical artifact path (see :func:`validate_artifact_path`); ``""`` gives
            the root itself.

    Returns:
        The absolute local path, under the resolved ``root``.

    Raises:
        UnsafePathError: The logical path is not acceptable or would leave ``root``.
    """
    clean = validate_artifact_path(logical, allow_empty=True)
    real_root = os.path.realpath(root)
    joined = os.path.join(real_root, *clean.split("/")) if clean else real_root
    resolved = os.path.realpath(joined)
    if os.path.commonpath([real_root, resolved]) != real_root:
        raise _refuse("artifact path", logical, f"resolves outside the folder {str(root)!r}")
    return joined


def local_path(value: object, *, field: str) -> Path:
    """A caller's path on this machine (a non-empty ``str`` or ``os.PathLike``) as a Path."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value):
        return Path(value)
    raise InvalidArgumentError(
        f"The {field} must be a local path (a non-empty str or os.PathLike). "
        f"Got {value!r} instead.",
        field=field,
    )
