"""Dataset references: ``name``, ``name@v3``, ``name@3`` and ``name@latest``."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from loopml.errors import InvalidArgumentError
from loopml.storage.validation import validate_dataset_name, validate_dataset_version

__all__ = ["DatasetRef", "parse_ref"]

_VERSION = re.compile(r"v?([0-9]{1,10})")


class DatasetRef(NamedTuple):
    """A dataset name and a version number (``None``: the latest version)."""

    name: str
    version: int | None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@v{self.version}"


def parse_ref(ref: Any, *, field: str = "ref") -> DatasetRef:
    """Parse ``"customers"``, ``"customers@v3"``, ``"customers@3"`` or ``"customers@latest"``.

    Raises:
        InvalidArgumentError: the reference is not a string of that form.
    """
    if not isinstance(ref, str):
        raise InvalidArgumentError(
            f"A dataset reference must be a string such as 'customers@v3'. Got {ref!r}.",
            field=field,
        )
    name, sep, version_text = ref.partition("@")
    try:
        name = validate_dataset_name(name)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(
            f"Invalid dataset reference {ref!r}: {exc}", field=field
        ) from None
    if not sep or version_text == "latest":
        return DatasetRef(name, None)
    match = _VERSION.fullmatch(version_text)
    if match is None or int(match.group(1)) == 0:
        raise InvalidArgumentError(
            f"Invalid dataset reference {ref!r}: after '@' expected a version such as 'v3' "
            f"or 'latest', got {version_text!r}.",
            field=field,
        )
    return DatasetRef(name, validate_dataset_version(int(match.group(1))))
