"""The Python distributions a model package needs, with the versions it was saved with.

Requirements are a mapping ``{distribution name: version}``. Names are normalised as pip
does (lowercase, runs of ``-``, ``_`` and ``.`` become ``-``). A value is either an exact
version (``"1.5.2"``, what was installed when the model was saved), a pip version
specifier (``">=2,<3"``, from a caller's requirement) or ``""`` (any version).

Versions are read with :mod:`importlib.metadata` only: no pip, no resolver, no subprocess,
so capturing them costs about a millisecond. Only the flavor's direct requirements are
captured, plus numpy and pandas when installed (every flavor's inputs go through them).

Requirement strings from callers are checked strictly (a name, optional extras, an optional
version specifier): environment markers, URLs, options and anything with ``;`` or a line
break are refused, so a requirement can never smuggle a command into a generated
Dockerfile or shell line.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable

from loopml.errors import InvalidArgumentError

__all__ = ["capture_requirements", "normalize_name", "pip_lines"]

_ALWAYS = ("numpy", "pandas")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION = r"[A-Za-z0-9.*+!_-]+"
_CLAUSE = rf"(?:===|==|!=|~=|<=|>=|<|>)\s*{_VERSION}"
_REQUIREMENT = re.compile(
    rf"\s*(?P<name>{_NAME})\s*(?:\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\])?"
    rf"\s*(?P<spec>(?:{_CLAUSE})(?:\s*,\s*{_CLAUSE})*)?\s*"
)
_EXACT = re.compile(r"==\s*(?P<version>[A-Za-z0-9.+!_-]+)")
_SHOWN = 80


def normalize_name(name: str) -> str:
    """The distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _parse(requirement: object, field: str) -> tuple[str, str]:
    """``(normalised name, version or specifier)`` for one caller's requirement string."""
    match = _REQUIREMENT.fullmatch(requirement) if isinstance(requirement, str) else None
    if match is None:
        shown = repr(requirement)
        shown = shown if len(shown) <= _SHOWN else shown[:_SHOWN] + "..."
        raise InvalidArgumentError(
            f"Each of {field} must be a requirement such as 'scikit-learn', "
            f"'scikit-learn==1.5.2' or 'torch>=2,<3' (no markers, URLs, options, ';' or line "
            f"breaks). Got {shown}.",
            field=field,
        )
    name = normalize_name(match["name"])
    spec = re.sub(r"\s+", "", match["spec"] or "")
    exact = _EXACT.fullmatch(spec)
    if exact is not None:
        return name, exact["version"]
    if not spec:
        return name, _installed(name) or ""
    return name, spec


def _parse_all(requirements: Iterable[str] | None, field: str) -> dict[str, str]:
    if requirements is None:
        return {}
    if isinstance(requirements, str | bytes):
        raise InvalidArgumentError(
            f"{field} must be a list of requirement strings, not a single string.", field=field
        )
    return dict(_parse(item, field) for item in requirements)


def capture_requirements(
    flavor_requirements: Iterable[str],
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
) -> dict[str, str]:
    """The requirements to record in a manifest, sorted by name.

    ``pip_requirements`` replaces what would be captured (the flavor's requirements plus
    numpy and pandas); ``extra_pip_requirements`` is added on top of either.
    """
    replaced = _parse_all(pip_requirements, "pip_requirements")
    extra = _parse_all(extra_pip_requirements, "extra_pip_requirements")
    if pip_requirements is not None:
        found = replaced
    else:
        found = {}
        for name in (*flavor_requirements, *_ALWAYS):
            version = _installed(name)
            if version is not None:
                found[normalize_name(name)] = version
    found.update(extra)
    return dict(sorted(found.items()))


def pip_lines(requirements: dict[str, str]) -> list[str]:
    """The requirements as pip lines: ``name==1.2.3``, ``name>=2`` or ``name``."""
    lines = []
    for name, version in sorted(requirements.items()):
        if not version:
            lines.append(name)
        elif version[0] in "<>=!~":
            lines.append(f"{name}{version}")
        else:
            lines.append(f"{name}=={version}")
    return lines
