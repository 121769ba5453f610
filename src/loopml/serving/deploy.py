"""Deployment artifacts: a Docker build context and Kubernetes manifests that run
``loopml serve`` for one model.

::

    from loopml.serving.deploy import write_docker_context, write_k8s_manifests

    write_docker_context("models:/churn@champion", "build/")   # then: docker build build/
    write_k8s_manifests("models:/churn@champion", "k8s/",
                        image="registry.example.com/churn:v3", replicas=3)

:func:`write_docker_context` resolves the model URI now (through the registry for
``models:/`` URIs) and, by default, *bakes* the package into the build context: its files
are fetched from the store, checked against their digests, and copied into the image, so
the container never needs the store and always serves the same bytes. With ``bake=False``
the image serves the URI itself and reads the store named by ``LOOPML_TRACKING_URI`` when
it starts. Either way the requirements are pinned from the package's manifest, loopml is
pinned to the version installed here, and they go into a ``requirements.txt`` that the
Dockerfile copies (never inlined into a ``RUN`` line).

:func:`write_k8s_manifests` writes one YAML file per object (Deployment, Service,
HorizontalPodAutoscaler, ServiceMonitor) with :func:`yaml.safe_dump`. It only parses the
model URI (to name the objects): it works without access to the store.

Every argument is checked before anything is written, and a bad one raises
:class:`~loopml.errors.InvalidArgumentError` whose ``field`` names it. Values that end up
in a Dockerfile are either refused (control characters, names that are not identifiers,
requirements that are not plain ``name==version`` pins) or quoted so that they are read
back exactly and can never start a new instruction. The output folder is written in a
staging folder beside it and moved into place, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml

from loopml import registry
from loopml._version import __version__
from loopml.errors import (
    IntegrityError,
    InvalidArgumentError,
    MissingDependencyError,
    UnsafePathError,
)
from loopml.models._manifest import MANIFEST_FILE, digest_bytes, parse_manifest, verify_files
from loopml.models.uris import ModelUri, parse_model_uri, resolve_digest
from loopml.storage.blobs import DIGEST_PREFIX
from loopml.storage.paths import join_under
from loopml.storage.uris import open_store

__all__ = [
    "DEFAULT_PORT",
    "IMAGE_MODEL_DIR",
    "LOOPML_EXTRAS",
    "DeployResult",
    "default_base_image",
    "write_docker_context",
    "write_k8s_manifests",
]

DEFAULT_PORT = 8080
"""The port ``loopml serve`` listens on in the image."""

IMAGE_MODEL_DIR = "/app/model"
"""Where a baked model package lies in the image."""

LOOPML_EXTRAS = ("serve",)
"""The extras of loopml the image installs to run ``loopml serve``."""

#: the image's user and group: numeric, so Kubernetes' runAsNonRoot can check it
_UID = 10001
_METRICS_PATH = "/metrics"
_LIVE_PATH = "/v2/health/live"
_READY_PATH = "/v2/health/ready"
_SERVICE_PORT = 80
_MAX_WORKERS = 64
_MAX_VALUE_CHARS = 32_768
_SHOWN = 80

#: what the Docker build context holds (``model`` only when the package is baked)
_DOCKER_ENTRIES = ("Dockerfile", ".dockerignore", "README.txt", "requirements.txt", "model")
#: one file per Kubernetes object
_K8S_FILES = {
    "Deployment": "deployment.yaml",
    "Service": "service.yaml",
    "HorizontalPodAutoscaler": "hpa.yaml",
    "ServiceMonitor": "servicemonitor.yaml",
}

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,255}")
#: names of variables that look like they hold secrets (written in clear: warned about)
_SECRET_ENV = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY|ACCESS_KEY|PRIVATE_KEY")
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_QUANTITY = re.compile(r"(?P<number>\d+(?:\.\d+)?|\.\d+)(?P<suffix>[KMGTPE]i|[numkMGTPE])?")
_QUANTITY_FACTOR = {
    "": 1,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    **{f"{unit}i": 1024 ** (i + 1) for i, unit in enumerate("KMGTPE")},
}
# An image reference as Docker reads it: [registry[:port]/]path[:tag][@digest].
_DOMAIN_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?)/)?"
    rf"(?P<path>{_PATH_PART}(?:/{_PATH_PART})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
_PIN_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
#: label keys loopml sets itself (a user's --label may not replace them)
_OWN_LABEL_PREFIXES = ("app.kubernetes.io/", "kubernetes.io/", "k8s.io/", "loopml/")


@dataclass(frozen=True)
class DeployResult:
    """What :func:`write_docker_context` or :func:`write_k8s_manifests` wrote.

    ``files`` are the paths written, relative to ``out_dir`` (a baked package's files are
    under ``model/``). ``image`` is the base image of a Docker context, or the image the
    Kubernetes Deployment runs. ``package_digest`` and ``model_version`` are the package and
    registered version the URI pointed at when the context was written (``None`` for
    Kubernetes manifests, which do not read the store). ``warnings`` are things to check
    before shipping; ``next_steps`` are the commands to run next.
    """

    target: Literal["docker", "k8s"]
    out_dir: Path
    files: tuple[str, ...]
    model_uri: str
    name: str
    image: str
    baked: bool = False
    package_digest: str | None = None
    model_version: int | None = None
    requirements: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON data."""
        return {
            "target": self.target,
            "out_dir": str(self.out_dir),
            "files": list(self.files),
            "model_uri": self.model_uri,
            "name": self.name,
            "image": self.image,
            "baked": self.baked,
            "package_digest": self.package_digest,
            "model_version": self.model_version,
            "requirements": list(self.requirements),
            "warnings": list(self.warnings),
            "next_steps": list(self.next_steps),
        }


def default_base_image() -> str:
    """The base image for this Python: ``python:3.X-slim-bookworm``, the slim Debian 12
    image of the running minor version (the one loopml and the model were installed in)."""
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim-bookworm"


# -- checking arguments ------------------------------------------------------------------------


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _invalid(field_name: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, field=field_name)


def _unsafe_char(value: str) -> str | None:
    """The first character of ``value`` that may not appear in a generated line, if any:
    control characters (line breaks included), Unicode line and paragraph separators and
    invisible format characters (which could make a file read differently than it runs)."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return char
    return None


def _plain_text(value: Any, field_name: str, what: str) -> str:
    """``value`` if it is a string with no control or invisible characters."""
    if not isinstance(value, str):
        raise _invalid(
            field_name, f"{what} must be a string. Got {type(value).__name__}: {_shown(value)}."
        )
    bad = _unsafe_char(value)
    if bad is not None:
        raise _invalid(
            field_name,
            f"{what} {_shown(value)} contains the character {bad!r} (U+{ord(bad):04X}): line "
            "breaks, control and invisible characters cannot be written safely. Expected "
            "printable text on one line.",
        )
    if len(value) > _MAX_VALUE_CHARS:
        raise _invalid(field_name, f"{what} is longer than {_MAX_VALUE_CHARS:,} characters.")
    return value


def _int_in(value: Any, field_name: str, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(
            field_name, f"{what} must be an integer from {low} to {high}. Got {_shown(value)}."
        )
    return value


def _port(value: Any) -> int:
    return _int_in(
        value, "port", 1024, 65535, "The port (the server runs as a non-root user, so 1024 or more)"
    )


def _workers(value: Any) -> int:
    return _int_in(value, "workers", 1, _MAX_WORKERS, "The number of worker processes")


def _image_ref(value: Any, field_name: str) -> re.Match[str]:
    """An image reference such as ``python:3.11-slim-bookworm`` or
    ``registry.example.com:5000/team/churn:v3@sha256:...``."""
    text = _plain_text(value, field_name, "The image")
    match = _IMAGE.fullmatch(text)
    if match is None or len(match["path"]) > 255:
        raise _invalid(
            field_name,
            f"The image {_shown(text)} is not an image reference. Expected "
            "[REGISTRY[:PORT]/]NAME[:TAG][@DIGEST] with a lowercase NAME, e.g. "
            "'registry.example.com/churn:v3'.",
        )
    return match


def _env(env: Any, *, docker: bool) -> dict[str, str]:
    """The caller's environment variables, checked: identifier names, string values; in a
    Dockerfile no control characters at all, in YAML no NUL (a process cannot receive it)."""
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise _invalid(
            "env",
            f"env must be a mapping of variable names to values. Got {type(env).__name__}.",
        )
    checked: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise _invalid(
                "env",
                f"The environment variable name {_shown(name)} is not valid. Expected a "
                "letter or '_' followed by letters, digits or '_' ([A-Za-z_][A-Za-z0-9_]*).",
            )
        if name == "LOOPML_TOKEN":
            where = "the image's layers" if docker else "the manifest"
            instead = (
                "pass it when the container starts (docker run -e LOOPML_TOKEN)"
                if docker
                else "store it in a Secret and pass token_secret (--token-secret)"
            )
            raise _invalid(
                "env",
                f"LOOPML_TOKEN is a secret and would be written in clear into {where}: {instead}.",
            )
        if docker:
            checked[name] = _plain_text(value, "env", f"The value of {name}")
            continue
        if not isinstance(value, str):
            raise _invalid(
                "env",
                f"The value of {name} must be a string. Got {type(value).__name__}.",
            )
        if (
            "\x00" in value
            or any(unicodedata.category(char) == "Cs" for char in value)
            or len(value) > _MAX_VALUE_CHARS
        ):
            raise _invalid(
                "env",
                f"The value of {name} must be text without NUL characters or lone surrogates "
                f"(a process cannot receive them), at most {_MAX_VALUE_CHARS:,} characters.",
            )
        checked[name] = value
    return checked


def _secret_warnings(env: Mapping[str, str], where: str) -> list[str]:
    return [
        f"{name} looks like a secret: its value is written in clear into {where}. Pass "
        "secrets when the container starts instead."
        for name in env
        if _SECRET_ENV.search(name.upper())
    ]


def _name(name: Any, target: ModelUri) -> str:
    """The objects' name: ``name`` if given (a DNS-1035 label), else one derived from the
    model's registered name (or the artifact path or folder name): lowercase, every run of
    other characters made ``-``, at most 63 characters (a long name is cut and gets a hash
    of the whole name, so two long names do not collide)."""
    expected = (
        "1 to 63 lowercase letters, digits and '-', starting with a letter and ending with "
        "a letter or digit (a Kubernetes DNS-1035 label)"
    )
    if name is not None:
        if not isinstance(name, str) or not _DNS_1035.fullmatch(name):
            raise _invalid("name", f"The name {_shown(name)} is not valid. Expected {expected}.")
        return name
    if target.name:
        source = target.name
    elif target.artifact_path:
        source = target.artifact_path.rsplit("/", 1)[-1]
    else:
        source = target.folder.expanduser().absolute().name if target.folder else ""
    derived = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")
    if len(derived) > 63:
        suffix = hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
        derived = derived[:54].rstrip("-") + "-" + suffix
    if not _DNS_1035.fullmatch(derived):
        raise _invalid(
            "name",
            f"Cannot derive a name for the deployment from {_shown(source)} (it must start "
            f"with a letter once lowercased). Pass name= (--name) with {expected}.",
        )
    return derived


def _out_dir(out_dir: Any, force: Any) -> Path:
    """The output folder: it may not exist yet, or be empty; with ``force`` it may hold
    files (those loopml writes are replaced)."""
    if not isinstance(out_dir, str | os.PathLike) or not os.fspath(out_dir).strip():
        raise _invalid("out_dir", f"out_dir must be a folder path. Got {_shown(out_dir)}.")
    path = Path(os.fspath(out_dir)).expanduser()
    if path.exists() and not path.is_dir():
        raise _invalid(
            "out_dir", f"The output {str(path)!r} is a file; expected a new or empty folder."
        )
    if path.is_dir() and any(path.iterdir()) and not force:
        raise _invalid(
            "out_dir",
            f"The output folder {str(path)!r} is not empty. Choose a new or empty folder, or "
            "pass force=True (--force) to replace the files loopml writes there.",
        )
    return path


# -- resolving the model -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Resolved:
    """The package a model URI points at now."""

    target: ModelUri
    digest: str
    manifest: dict[str, Any]
    manifest_data: bytes
    version: int | None = None
    warnings: tuple[str, ...] = ()


def _read_folder_manifest(folder: Path, uri: str) -> bytes:
    path = folder / MANIFEST_FILE
    if path.is_symlink():
        raise UnsafePathError(
            f"Cannot deploy {uri!r}: its {MANIFEST_FILE} is a symbolic link.", field="model_uri"
        )
    if not path.is_file():
        raise InvalidArgumentError(
            f"Cannot deploy {uri!r}: the folder does not exist or has no {MANIFEST_FILE} (a "
            "package written by loopml.models.save).",
            field="model_uri",
        )
    return path.read_bytes()


def _parse(model_uri: Any) -> ModelUri:
    """The parsed model URI; an error names the argument (``field="model_uri"``)."""
    try:
        return parse_model_uri(model_uri)
    except InvalidArgumentError as exc:
        raise _invalid("model_uri", exc.message) from None


def _resolve(target: ModelUri, tracking_uri: Any) -> _Resolved:
    """Find the package (through the registry for ``models:/`` URIs) and read its manifest."""
    if target.folder is not None:
        folder = target.folder.expanduser().absolute()
        data = _read_folder_manifest(folder, target.text)
        manifest = parse_manifest(data, source=target.text)
        return _Resolved(target, digest_bytes(data), manifest, data)
    warnings: list[str] = []
    version = None
    if target.name is not None:
        wanted: int | str = target.version or target.alias or "latest"
        found = registry.get_version(target.name, wanted, tracking_uri=tracking_uri)
        digest, version = found.package_digest, found.version
        if found.status.value != "READY":
            warnings.append(f"{target.name} version {version} is {found.status.value}.")
    else:
        digest = resolve_digest(open_store(tracking_uri), target)
    data = open_store(tracking_uri).blobs.read_bytes(digest)  # verified against the digest
    manifest = parse_manifest(data, source=target.text)
    return _Resolved(target, digest, manifest, data, version, tuple(warnings))


def _fetch_package(resolved: _Resolved, dest: Path, tracking_uri: Any) -> None:
    """Copy the package's files and manifest into ``dest`` and check every file against its
    digest in the manifest."""
    files = resolved.manifest["files"]
    dest.mkdir()
    if resolved.target.folder is not None:
        source = resolved.target.folder.expanduser().absolute()
        verify_files(source, files)  # nothing changed, nothing leads outside the folder
        for name in sorted(files):
            destination = Path(join_under(dest, name))
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(join_under(source, name), destination)
    else:
        blobs = open_store(tracking_uri).blobs
        blobs.get_files([(files[name]["digest"], join_under(dest, name)) for name in sorted(files)])
    (dest / MANIFEST_FILE).write_bytes(resolved.manifest_data)
    verify_files(dest, files)  # the copies are what the manifest says
    if digest_bytes((dest / MANIFEST_FILE).read_bytes()) != resolved.digest:
        raise IntegrityError(
            f"The manifest copied for {resolved.target.text!r} does not match its digest.",
            source=resolved.target.text,
        )


# -- requirements ------------------------------------------------------------------------------


def _requirement_class() -> Any:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError as exc:  # pragma: no cover - packaging comes with pip's toolchain
        raise MissingDependencyError(
            "Writing a Docker context needs the 'packaging' package to check requirements. "
            "Install it with: pip install packaging",
            package="packaging",
        ) from exc
    return Requirement, InvalidRequirement


def _pin_line(name: Any, version: Any) -> str:
    """One requirement of the manifest as a pip line (``name==1.2.3``, ``name>=2,<3`` or
    ``name``), refused unless it is exactly that: no markers, URLs, options or spaces."""
    requirement_cls, invalid = _requirement_class()
    expected = (
        "Expected a distribution name with an exact version ('scikit-learn': '1.5.2') or a "
        "version specifier ('>=2,<3'); markers, URLs, options, spaces and line breaks are "
        "refused."
    )
    if not isinstance(name, str) or not isinstance(version, str):
        raise _invalid(
            "requirements",
            f"The model's manifest has a requirement that is not text: {_shown(name)}: "
            f"{_shown(version)}. {expected}",
        )
    if not version:
        line = name
    elif version[0] in "<>=!~":
        line = f"{name}{version}"
    else:
        line = f"{name}=={version}"
    try:
        parsed = requirement_cls(line)
    except invalid:
        parsed = None
    if (
        parsed is None
        or not _PIN_NAME.fullmatch(name)
        or parsed.name != name
        or parsed.marker is not None
        or parsed.url is not None
        or parsed.extras
        or any(char.isspace() or not char.isprintable() for char in line)
    ):
        raise _invalid(
            "requirements",
            f"The model's manifest has a requirement loopml will not write into an image: "
            f"{_shown(name)}: {_shown(version)}. {expected}",
        )
    return f"{parsed.name}{parsed.specifier}"  # as packaging read it (clauses sorted)


def _requirements(manifest: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The pip lines for the image (loopml first, pinned to this version) and warnings."""
    warnings = []
    own = "loopml[" + ",".join(LOOPML_EXTRAS) + "]==" + __version__
    lines = [own]
    requirements = manifest["requirements"]
    for name in sorted(requirements):
        version = requirements[name]
        line = _pin_line(name, version)
        if name == "loopml":
            if version != __version__:
                warnings.append(
                    f"The model lists loopml {version or '(any version)'}; the image pins "
                    f"loopml=={__version__}, the version installed here."
                )
            continue
        if "==" not in line or "*" in line:
            warnings.append(f"The requirement {line!r} is not pinned to one version.")
        lines.append(line)
    _pin_line("loopml", __version__)
    if "+" in __version__ or "dev" in __version__:
        warnings.append(
            f"loopml {__version__} is a development version: the image installs it from your "
            "package index, which may not have it."
        )
    return lines, warnings


# -- writing files -----------------------------------------------------------------------------


def _staging(out_dir: Path) -> Path:
    parent = out_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=parent, prefix=f".{out_dir.name or 'out'}.loopml-"))


def _readable(folder: Path) -> None:
    """Files 0644 and folders 0755: an image's non-root user must read the copies (blobs
    are fetched into private temporary files)."""
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)  # noqa: S103 - read by the image's user
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    os.chmod(folder, 0o755)  # noqa: S103 - a build context, read by docker


def _publish(staging: Path, out_dir: Path, known: Iterable[str]) -> None:
    """Move what ``staging`` holds into ``out_dir`` (renamed whole when ``out_dir`` does not
    exist), removing the ``known`` entries of an earlier run that were not written again."""
    _readable(staging)
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    written = {entry.name for entry in staging.iterdir()}
    for name in (*written, *known):
        old = out_dir / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif old.exists() or old.is_symlink():
            old.unlink()
    for name in sorted(written):
        os.replace(staging / name, out_dir / name)
    staging.rmdir()


def _written(folder: Path) -> tuple[str, ...]:
    """Every file under ``folder``, as sorted ``/``-separated relative paths."""
    return tuple(
        sorted(
            Path(os.path.relpath(os.path.join(root, name), folder)).as_posix()
            for root, _, names in os.walk(folder)
            for name in names
        )
    )


# -- Dockerfile --------------------------------------------------------------------------------


def _docker_quoted(value: str, field_name: str) -> str:
    """``value`` as a double-quoted Dockerfile word: ``\\``, ``"`` and ``$`` are escaped
    (Docker's rules for double quotes: ``\\`` escapes exactly these three and keeps any
    other backslash), so the value is read back exactly, with no variable expansion. Line
    breaks cannot be quoted in a Dockerfile, so control characters are refused."""
    _plain_text(value, field_name, "The value")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _exec_form(args: list[str], field_name: str) -> str:
    """A JSON array (exec form: no shell, no variable expansion)."""
    for arg in args:
        _plain_text(arg, field_name, "The argument")
    return json.dumps(args, ensure_ascii=False)


def _dockerfile(
    resolved: _Resolved,
    *,
    name: str,
    bake: bool,
    base_image: str,
    port: int,
    workers: int,
    env: Mapping[str, str],
) -> str:
    serve_target = IMAGE_MODEL_DIR if bake else resolved.target.text
    # the endpoint keeps the registered model's name (/v2/models/churn/...) in a baked image
    entrypoint = ["loopml", "serve", serve_target, "--name", resolved.target.name or name]
    labels = {
        "org.opencontainers.image.title": name,
        "org.opencontainers.image.description": "loopml model server (loopml serve)",
        "org.opencontainers.image.base.name": base_image,
        "loopml.version": __version__,
        "loopml.model.package-digest": resolved.digest,
        "loopml.model.flavor": str(resolved.manifest["flavor"]),
    }
    if resolved.target.folder is None:
        labels["loopml.model.uri"] = resolved.target.text
    if resolved.version is not None:
        labels["loopml.model.version"] = str(resolved.version)
    live = f"http://127.0.0.1:{port}{_LIVE_PATH}"
    probe = (
        "import sys, urllib.request; "
        f"sys.exit(0 if urllib.request.urlopen({live!r}, timeout=4).status == 200 else 1)"
    )
    lines = [
        f"# Written by loopml {__version__} (loopml deploy docker): an image that serves one",
        "# model with `loopml serve`. Regenerate it rather than editing it; README.txt says",
        "# how to build and run it.",
        f"FROM {base_image}",
        "",
        *(f"LABEL {key}={_docker_quoted(value, 'labels')}" for key, value in labels.items()),
        "",
        'ENV PYTHONDONTWRITEBYTECODE="1"',
        'ENV PYTHONUNBUFFERED="1"',
        'ENV PIP_NO_CACHE_DIR="1"',
        'ENV PIP_DISABLE_PIP_VERSION_CHECK="1"',
        'ENV LOOPML_CACHE_DIR="/tmp/loopml-cache"',
        "",
        "# An unprivileged user with fixed numeric ids (Kubernetes' runAsNonRoot checks them).",
        f"RUN groupadd --system --gid {_UID} loopml && useradd --system --uid {_UID} "
        f"--gid {_UID} --create-home --home-dir /home/loopml --shell /usr/sbin/nologin loopml",
        "",
        "WORKDIR /app",
        "# Pinned from the model's manifest; copied first so the layer is reused while only",
        "# the model changes.",
        "COPY requirements.txt /app/requirements.txt",
        "RUN python -m pip install --no-cache-dir --requirement /app/requirements.txt",
    ]
    if bake:
        lines += [
            "# The model package, checked against its digests when this context was written;",
            "# owned by root, so the server cannot change it.",
            f"COPY model/ {IMAGE_MODEL_DIR}/",
        ]
    else:
        lines += [
            "# The model is read from the store when the container starts: run it with",
            "# LOOPML_TRACKING_URI (and LOOPML_TOKEN for a server with auth) set.",
        ]
    if env:
        lines += ["", "# Set with --env."]
        lines += [f"ENV {key}={_docker_quoted(value, 'env')}" for key, value in env.items()]
    # the server must listen on the container's own interface to be reachable
    serve_options = ["--host", "0.0.0.0", "--port", str(port), "--workers", str(workers)]  # noqa: S104
    lines += [
        "",
        f"USER {_UID}:{_UID}",
        f"EXPOSE {port}",
        "HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 "
        f"CMD {_exec_form(['python', '-c', probe], 'healthcheck')}",
        f"ENTRYPOINT {_exec_form(entrypoint, 'model_uri')}",
        f"CMD {_exec_form(serve_options, 'workers')}",
    ]
    return "\n".join(lines) + "\n"


_DOCKERIGNORE = """\
# Only what the Dockerfile copies goes into the build context.
*
!requirements.txt
!model
!model/**
"""


def _readme(
    resolved: _Resolved, *, name: str, tag: str, bake: bool, port: int, base_image: str
) -> str:
    uri = resolved.target.text if resolved.target.folder is None else "a local package folder"
    version = f" (version {resolved.version})" if resolved.version is not None else ""
    image = f"{name}:{tag}"
    if bake:
        what = (
            "The model package is baked into the image (model/ here, /app/model there): it\n"
            "was copied from the store and checked against its digests, so the container\n"
            "needs no access to the store and always serves these exact bytes:\n"
            f"  {resolved.digest}"
        )
        run = f"  docker run --rm -p {port}:{port} {image}"
    else:
        what = (
            "The model is not in the image: the server loads it from the store when the\n"
            "container starts, so set LOOPML_TRACKING_URI (and LOOPML_TOKEN for a server with\n"
            "auth; LOOPML_ARTIFACTS_URI for a separate blob store). An alias is followed when\n"
            "the container starts; the requirements were pinned for the version it named when\n"
            "this context was written."
        )
        run = (
            f"  docker run --rm -p {port}:{port} \\\n"
            "      -e LOOPML_TRACKING_URI=https://tracking.example.com -e LOOPML_TOKEN \\\n"
            f"      {image}"
        )
    return f"""\
Docker build context written by loopml {__version__} (loopml deploy docker)

Model: {uri}{version}
Flavor: {resolved.manifest["flavor"]}
Base image: {base_image}

{what}

requirements.txt pins loopml and the model's requirements from its manifest.

Build (from this folder):

  docker build -t {image} .

Run:

{run}

Then:

  curl http://127.0.0.1:{port}{_LIVE_PATH}    # the process is up
  curl http://127.0.0.1:{port}{_READY_PATH}   # the model is loaded
  curl http://127.0.0.1:{port}{_METRICS_PATH}            # Prometheus metrics

The server listens on port {port} as user {_UID} (not root); the image's
HEALTHCHECK asks {_LIVE_PATH}. Options after the image name replace the CMD:

  docker run ... {image} --host 0.0.0.0 --port {port} --workers 4

(keep the port: the health check uses it).
"""


def write_docker_context(
    model_uri: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    bake: bool = True,
    port: int = DEFAULT_PORT,
    workers: int = 1,
    base_image: str | None = None,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    force: bool = False,
    tracking_uri: str | os.PathLike[str] | None = None,
) -> DeployResult:
    """Write a Docker build context that serves ``model_uri`` with ``loopml serve``.

    The folder holds a ``Dockerfile``, a ``.dockerignore``, ``requirements.txt`` (loopml
    pinned to this version, the model's requirements from its manifest), ``README.txt``
    (how to build and run it) and, when baked, the package under ``model/``.

    Args:
        model_uri: ``models:/name@alias``, ``models:/name/3``, ``models:/name/latest``,
            ``runs:/RUN_ID/PATH`` or a folder written by :func:`loopml.models.save`.
        out_dir: The folder to write: new or empty (see ``force``).
        bake: Copy the package into the image (checked against its digests now), so the
            container never needs the store. ``False``: the image serves ``model_uri`` and
            reads the store named by ``LOOPML_TRACKING_URI`` when it starts (not for a
            local folder).
        port: The port the server listens on (1024-65535: the server is not root).
        workers: Worker processes of the server (1-64).
        base_image: The ``FROM`` image (default: :func:`default_base_image`); pin a digest
            (``...@sha256:...``) for reproducible builds.
        env: Environment variables set in the image. Names must be identifiers, values one
            line of printable text; ``LOOPML_TOKEN`` is refused (a secret in the image).
        name: The image's name in the README's commands and labels (default: from the
            model's name).
        force: Write into a folder that holds files, replacing those loopml writes.
        tracking_uri: The store of ``runs:/`` and ``models:/`` URIs (default: the current
            one).

    Returns:
        A :class:`DeployResult`: the files written, the package digest and version, the
        pinned requirements, warnings and the commands to build and run the image.

    Raises:
        InvalidArgumentError: an argument is not acceptable (``field`` names it), or the
            manifest holds a requirement that cannot be pinned safely
            (``field="requirements"``).
        ModelNotFoundError, RunNotFoundError, ArtifactNotFoundError: nothing is there.
        IntegrityError: a file of the package does not match its digest.
    """
    target = _parse(model_uri)
    bake = bool(bake)
    port = _port(port)
    workers = _workers(workers)
    base = default_base_image() if base_image is None else base_image
    base_match = _image_ref(base, "base_image")
    clean_env = _env(env, docker=True)
    chosen = _name(name, target)
    if not bake and target.folder is not None:
        raise _invalid(
            "bake",
            "A local package folder can only be baked into the image (bake=True): a container "
            "cannot read a folder of this machine. Log and register the model to serve it "
            "from a store.",
        )
    destination = _out_dir(out_dir, force)
    resolved = _resolve(target, tracking_uri)
    requirements, warnings = _requirements(resolved.manifest)
    warnings = [*resolved.warnings, *warnings]
    warnings += _secret_warnings(clean_env, "the image (docker inspect shows it)")
    if base_image is None:
        saved = ".".join(str(resolved.manifest["python_version"]).split(".")[:2])
        running = f"{sys.version_info.major}.{sys.version_info.minor}"
        if saved != running:
            warnings.append(
                f"The model was saved with Python {saved}; the image runs Python {running} "
                f"(the Python here). Pass base_image (--base-image) python:{saved}-slim-bookworm "
                "to match the model."
            )
    if base_match["tag"] in (None, "latest") and base_match["digest"] is None:
        warnings.append(f"The base image {base!r} is not pinned: give a tag or a digest.")
    if resolved.manifest["needs_pickle"]:
        warnings.append(
            "The model package is a pickle (needs_pickle): loading it runs code from the "
            "package, and the server loads it only when told to trust it (add --trusted to "
            "the serve command if you trust its source)."
        )
    if not bake and target.kind in ("alias", "latest"):
        warnings.append(
            f"{target.text} is followed when the container starts: another version than "
            f"{resolved.version} may need other requirements than those pinned now."
        )
    if not bake and "LOOPML_TRACKING_URI" not in clean_env:
        warnings.append(
            "The image does not bake the model: set LOOPML_TRACKING_URI (and LOOPML_TOKEN "
            "when the tracking server has auth) when the container starts."
        )
    if resolved.version is not None:
        tag = f"v{resolved.version}"
    else:
        tag = resolved.digest.removeprefix(DIGEST_PREFIX)[:12]
    dockerfile = _dockerfile(
        resolved,
        name=chosen,
        bake=bake,
        base_image=base,
        port=port,
        workers=workers,
        env=clean_env,
    )
    staging = _staging(destination)
    try:
        if bake:
            _fetch_package(resolved, staging / "model", tracking_uri)
        (staging / "Dockerfile").write_text(dockerfile, encoding="utf-8")
        (staging / ".dockerignore").write_text(_DOCKERIGNORE, encoding="utf-8")
        header = (
            f"# Pinned by loopml {__version__} from the manifest of the model package\n"
            f"# {resolved.digest}\n"
        )
        (staging / "requirements.txt").write_text(
            header + "\n".join(requirements) + "\n", encoding="utf-8"
        )
        (staging / "README.txt").write_text(
            _readme(resolved, name=chosen, tag=tag, bake=bake, port=port, base_image=base),
            encoding="utf-8",
        )
        files = _written(staging)
        _publish(staging, destination, _DOCKER_ENTRIES)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    context = shlex.quote(os.fspath(out_dir))
    image = f"{chosen}:{tag}"
    run = f"docker run --rm -p {port}:{port} "
    if not bake:
        run += "-e LOOPML_TRACKING_URI -e LOOPML_TOKEN "
    return DeployResult(
        target="docker",
        out_dir=destination,
        files=files,
        model_uri=target.text,
        name=chosen,
        image=base,
        baked=bake,
        package_digest=resolved.digest,
        model_version=resolved.version,
        requirements=tuple(requirements),
        warnings=tuple(warnings),
        next_steps=(f"docker build -t {image} {context}", run + image),
    )


# -- Kubernetes --------------------------------------------------------------------------------


def _quantity(value: Any, field_name: str, *, required: bool) -> Decimal | None:
    """A resource quantity such as ``500m``, ``2``, ``512Mi`` or ``1.5Gi`` (its value), or
    ``None`` when not set."""
    if value is None or value == "":
        if required:
            raise _invalid(
                field_name,
                f"{field_name} is needed (the autoscaler's CPU target is a share of it). "
                "Expected a quantity such as '500m' or '1'.",
            )
        return None
    match = _QUANTITY.fullmatch(value) if isinstance(value, str) else None
    try:
        amount = (
            Decimal(match["number"]) * Decimal(_QUANTITY_FACTOR[match["suffix"] or ""])
            if match
            else None
        )
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        amount = None
    if amount is None or amount <= 0:
        raise _invalid(
            field_name,
            f"{field_name} {_shown(value)} is not a Kubernetes quantity. Expected a positive "
            "number with an optional suffix: '500m' or '2' (CPU), '512Mi' or '2Gi' (memory).",
        )
    return amount


def _resources(
    cpu_request: Any, cpu_limit: Any, memory_request: Any, memory_limit: Any, autoscale: bool
) -> dict[str, dict[str, str]]:
    pairs = {
        "cpu": (("cpu_request", cpu_request, autoscale), ("cpu_limit", cpu_limit, False)),
        "memory": (
            ("memory_request", memory_request, False),
            ("memory_limit", memory_limit, False),
        ),
    }
    resources: dict[str, dict[str, str]] = {}
    for resource, ((req_field, request, needed), (lim_field, limit, _)) in pairs.items():
        low = _quantity(request, req_field, required=needed)
        high = _quantity(limit, lim_field, required=False)
        if low is not None and high is not None and low > high:
            raise _invalid(
                req_field,
                f"{req_field} {request!r} is more than {lim_field} {limit!r}; expected a "
                "request at most the limit.",
            )
        if low is not None:
            resources.setdefault("requests", {})[resource] = request
        if high is not None:
            resources.setdefault("limits", {})[resource] = limit
    return resources


def _labels(labels: Any) -> dict[str, str]:
    """The caller's extra labels: Kubernetes label keys and values, not loopml's own."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise _invalid("labels", f"labels must be a mapping. Got {type(labels).__name__}.")
    checked = {}
    for key, value in labels.items():
        prefix, _, label = key.rpartition("/") if isinstance(key, str) else ("", "", "")
        if (
            not isinstance(key, str)
            or not _LABEL_NAME.fullmatch(label)
            or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)))
        ):
            raise _invalid(
                "labels",
                f"The label key {_shown(key)} is not valid. Expected [PREFIX/]NAME: NAME 1 to "
                "63 letters, digits, '-', '_' or '.' starting and ending with a letter or "
                "digit; PREFIX a DNS subdomain such as 'example.com'.",
            )
        if key.startswith(_OWN_LABEL_PREFIXES) or prefix in ("kubernetes.io", "k8s.io"):
            raise _invalid(
                "labels",
                f"The label {key!r} is set by loopml or reserved by Kubernetes; choose a key "
                "with your own prefix.",
            )
        if not isinstance(value, str) or (value and not _LABEL_NAME.fullmatch(value)):
            raise _invalid(
                "labels",
                f"The value of label {key!r} is not valid: {_shown(value)}. Expected at most "
                "63 letters, digits, '-', '_' or '.', starting and ending with a letter or "
                "digit (or empty).",
            )
        checked[key] = value
    return checked


def _k8s_env_value(value: str) -> str:
    """``value`` as Kubernetes passes it literally: ``$`` doubled, since Kubernetes expands
    ``$(NAME)`` in env values and reads ``$$`` as one ``$``."""
    return value.replace("$", "$$")


def _replicas(
    replicas: Any, min_replicas: Any, max_replicas: Any, autoscale: bool
) -> tuple[int, int, int]:
    """(replicas, minimum, maximum), checked: 1 <= minimum <= maximum."""
    fixed = 2 if replicas is None else _int_in(replicas, "replicas", 1, 1000, "replicas")
    if not autoscale:
        for field_name, value in (("min_replicas", min_replicas), ("max_replicas", max_replicas)):
            if value is not None:
                raise _invalid(
                    field_name,
                    f"{field_name} sets the autoscaler's bounds, but autoscale is off "
                    "(--no-hpa); drop it or turn the autoscaler on.",
                )
        return fixed, fixed, fixed
    if replicas is not None and min_replicas is not None:
        raise _invalid(
            "replicas",
            "With the autoscaler, replicas is its minimum: give replicas (--replicas) or "
            "min_replicas (--min-replicas), not both.",
        )
    low = fixed if min_replicas is None else min_replicas
    low = _int_in(low, "min_replicas", 1, 1000, "min_replicas")
    high = max(10, low) if max_replicas is None else max_replicas
    high = _int_in(high, "max_replicas", 1, 1000, "max_replicas")
    if low > high:
        raise _invalid(
            "max_replicas",
            f"max_replicas ({high}) is less than the minimum ({low}); expected "
            "min_replicas <= max_replicas.",
        )
    return low, low, high


def _k8s_objects(
    target: ModelUri,
    *,
    name: str,
    namespace: str | None,
    image: str,
    port: int,
    workers: int,
    replicas: tuple[int, int, int],
    autoscale: bool,
    target_cpu: int,
    service_monitor: bool,
    resources: dict[str, dict[str, str]],
    env: Mapping[str, str],
    token_secret: str | None,
    token_secret_key: str,
    labels: Mapping[str, str],
) -> list[dict[str, Any]]:
    selector = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "model-server",
    }
    common = {**selector, "app.kubernetes.io/part-of": "loopml", **labels}
    annotations = {"loopml/generated-by": f"loopml {__version__}"}
    if target.folder is None:
        annotations["loopml/model-uri"] = target.text

    def metadata() -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if namespace is not None:
            meta["namespace"] = namespace
        meta["labels"] = dict(common)
        meta["annotations"] = dict(annotations)
        return meta

    container_env: list[dict[str, Any]] = [
        {"name": key, "value": _k8s_env_value(value)} for key, value in env.items()
    ]
    if token_secret is not None:
        container_env.append(
            {
                "name": "LOOPML_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": token_secret, "key": token_secret_key}},
            }
        )

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "http"},
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": failures,
        }

    container: dict[str, Any] = {
        "name": "model-server",
        "image": image,
        # the image's ENTRYPOINT is `loopml serve MODEL`: these replace its CMD
        "args": ["--host", "0.0.0.0", "--port", str(port), "--workers", str(workers)],  # noqa: S104
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
    }
    if container_env:
        container["env"] = container_env
    container.update(
        {
            # loading a model can take a while: liveness starts once the process answers
            "startupProbe": probe(_LIVE_PATH, 5, 60),
            "readinessProbe": probe(_READY_PATH, 10, 3),
            "livenessProbe": probe(_LIVE_PATH, 20, 3),
            "resources": resources,
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir
        }
    )
    deployment_spec: dict[str, Any] = {}
    if not autoscale:  # with an autoscaler the Deployment leaves the count to it
        deployment_spec["replicas"] = replicas[0]
    deployment_spec.update(
        {
            "selector": {"matchLabels": dict(selector)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": dict(common), "annotations": dict(annotations)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": _UID,
                        "runAsGroup": _UID,
                        "fsGroup": _UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        }
    )
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(),
            "spec": deployment_spec,
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(),
            "spec": {
                "type": "ClusterIP",
                "selector": dict(selector),
                "ports": [
                    {"name": "http", "port": _SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
                ],
            },
        },
    ]
    if autoscale:
        objects.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": metadata(),
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": replicas[1],
                    "maxReplicas": replicas[2],
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "averageUtilization": target_cpu},
                            },
                        }
                    ],
                },
            }
        )
    if service_monitor:
        monitor_spec: dict[str, Any] = {"selector": {"matchLabels": dict(selector)}}
        if namespace is not None:
            monitor_spec["namespaceSelector"] = {"matchNames": [namespace]}
        monitor_spec["endpoints"] = [
            {"port": "http", "path": _METRICS_PATH, "interval": "30s", "scrapeTimeout": "10s"}
        ]
        objects.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": metadata(),
                "spec": monitor_spec,
            }
        )
    return objects


def write_k8s_manifests(
    model_uri: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    image: str,
    name: str | None = None,
    namespace: str | None = None,
    replicas: int | None = None,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    target_cpu: int = 70,
    autoscale: bool = True,
    service_monitor: bool = True,
    port: int = DEFAULT_PORT,
    workers: int = 1,
    cpu_request: str | None = "500m",
    cpu_limit: str | None = None,
    memory_request: str | None = "512Mi",
    memory_limit: str | None = "1Gi",
    env: Mapping[str, str] | None = None,
    token_secret: str | None = None,
    token_secret_key: str = "token",  # noqa: S107 - a key name, not a secret
    labels: Mapping[str, str] | None = None,
    force: bool = False,
) -> DeployResult:
    """Write Kubernetes manifests that run ``image`` (built from :func:`write_docker_context`)
    to serve ``model_uri``: one YAML file per object.

    ``deployment.yaml`` (probes: readiness on ``/v2/health/ready``, liveness and startup on
    ``/v2/health/live``; a non-root, read-only container), ``service.yaml`` (port 80 to the
    container's ``http`` port), ``hpa.yaml`` (autoscaling/v2 on CPU; unless ``autoscale`` is
    off) and ``servicemonitor.yaml`` (Prometheus operator, ``/metrics``; unless
    ``service_monitor`` is off). Every object has the same name and labels; the Deployment,
    Service and ServiceMonitor select pods by ``app.kubernetes.io/name`` and
    ``app.kubernetes.io/component``. The model URI is only parsed (for the name and an
    annotation): the store is not read.

    Args:
        model_uri: The model the image serves (``models:/...``, ``runs:/...`` or a folder).
        out_dir: The folder to write: new or empty (see ``force``).
        image: The image to run, e.g. ``registry.example.com/churn:v3``.
        name: The objects' name (a DNS-1035 label); default: from the model's name.
        namespace: The objects' namespace (default: none written, kubectl's current one).
        replicas: Pods to run: with the autoscaler its minimum, without it the fixed count
            (default 2).
        min_replicas, max_replicas: The autoscaler's bounds (default: ``replicas`` and
            ``max(10, minimum)``).
        target_cpu: The autoscaler's target CPU utilisation, percent of the request (1-100).
        autoscale: Write the HorizontalPodAutoscaler (the Deployment then leaves its replica
            count to it).
        service_monitor: Write the ServiceMonitor (needs the Prometheus operator's CRDs).
        port: The port the server listens on in the container (1024-65535).
        workers: Worker processes per pod (1-64).
        cpu_request, cpu_limit, memory_request, memory_limit: Resource quantities
            (``"500m"``, ``"1Gi"``); ``None`` leaves one out. The CPU request is needed with
            the autoscaler.
        env: Environment variables for the container, passed literally (``$`` is written
            ``$$`` so Kubernetes expands nothing); ``LOOPML_TOKEN`` is refused: use
            ``token_secret``.
        token_secret: A Secret whose key ``token_secret_key`` becomes ``LOOPML_TOKEN``.
        labels: Extra labels for every object and pod (e.g. the ``release`` label your
            Prometheus selects ServiceMonitors by).
        force: Write into a folder that holds files, replacing those loopml writes.

    Returns:
        A :class:`DeployResult` listing the files and the command to apply them.

    Raises:
        InvalidArgumentError: an argument is not acceptable; ``field`` names it.
    """
    target = _parse(model_uri)
    autoscale = bool(autoscale)
    service_monitor = bool(service_monitor)
    image_match = _image_ref(image, "image")
    chosen = _name(name, target)
    if namespace is not None and (
        not isinstance(namespace, str) or not _DNS_LABEL.fullmatch(namespace)
    ):
        raise _invalid(
            "namespace",
            f"The namespace {_shown(namespace)} is not valid. Expected 1 to 63 lowercase "
            "letters, digits and '-', starting and ending with a letter or digit.",
        )
    counts = _replicas(replicas, min_replicas, max_replicas, autoscale)
    cpu = _int_in(target_cpu, "target_cpu", 1, 100, "target_cpu (percent of the CPU request)")
    port = _port(port)
    workers = _workers(workers)
    resources = _resources(cpu_request, cpu_limit, memory_request, memory_limit, autoscale)
    clean_env = _env(env, docker=False)
    if token_secret is not None and (
        not isinstance(token_secret, str)
        or len(token_secret) > 253
        or not _DNS_SUBDOMAIN.fullmatch(token_secret)
    ):
        raise _invalid(
            "token_secret",
            f"The Secret name {_shown(token_secret)} is not valid. Expected lowercase letters, "
            "digits, '-' and '.', starting and ending with a letter or digit.",
        )
    if not isinstance(token_secret_key, str) or not _SECRET_KEY.fullmatch(token_secret_key):
        raise _invalid(
            "token_secret_key",
            f"The Secret key {_shown(token_secret_key)} is not valid. Expected letters, "
            "digits, '-', '_' and '.'.",
        )
    extra_labels = _labels(labels)
    destination = _out_dir(out_dir, force)
    warnings = _secret_warnings(clean_env, "the manifest")
    if image_match["tag"] in (None, "latest") and image_match["digest"] is None:
        warnings.append(
            f"The image {image!r} has no tag (or only 'latest') and no digest: pods may "
            "run different images. Give the tag you built, e.g. churn:v3."
        )
    objects = _k8s_objects(
        target,
        name=chosen,
        namespace=namespace,
        image=image,
        port=port,
        workers=workers,
        replicas=counts,
        autoscale=autoscale,
        target_cpu=cpu,
        service_monitor=service_monitor,
        resources=resources,
        env=clean_env,
        token_secret=token_secret,
        token_secret_key=token_secret_key,
        labels=extra_labels,
    )
    staging = _staging(destination)
    try:
        for obj in objects:
            # ASCII only: every other character is escaped in double quotes, so each
            # YAML parser (kubectl's YAML 1.2 too) reads the same value back
            text = yaml.safe_dump(
                obj, sort_keys=False, default_flow_style=False, allow_unicode=False, width=4096
            )
            (staging / _K8S_FILES[obj["kind"]]).write_text(text, encoding="utf-8")
        files = _written(staging)
        _publish(staging, destination, _K8S_FILES.values())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    others = sorted(
        entry.name
        for entry in destination.iterdir()
        if entry.suffix in (".yaml", ".yml", ".json") and entry.name not in _K8S_FILES.values()
    )
    if others:
        warnings.append(
            f"{str(destination)!r} also holds {', '.join(others)}: `kubectl apply -f` on the "
            "folder applies them too."
        )
    return DeployResult(
        target="k8s",
        out_dir=destination,
        files=files,
        model_uri=target.text,
        name=chosen,
        image=image,
        warnings=tuple(warnings),
        next_steps=(f"kubectl apply -f {shlex.quote(os.fspath(out_dir))}",),
    )
