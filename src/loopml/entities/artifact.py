from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """A file (or, in listings, a folder) among a run's artifacts.

    ``path`` is the logical path relative to the run's artifact root, with ``/`` separators.
    ``digest`` is the content hash of the blob holding the file's bytes (``None`` for folders).
    """

    path: str
    is_dir: bool
    size: int | None = None
    digest: str | None = None
