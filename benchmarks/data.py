"""Data versioning benchmark: loopml data vs DVC (``dvc add``, default cache mode), in one run.

    python3 benchmarks/data.py                          # 1 GiB file, 10,000 files of 10 KiB
    python3 benchmarks/data.py --quick                  # 128 MiB, 2,000 files: a smoke run
    python3 benchmarks/data.py --quick --only dvc,floor # without loopml (DVC and the floor)
    python3 benchmarks/data.py --workloads add_folder,readd_unchanged --repeats 5

Workloads: the first add of one large file and of a folder of small files, the re-add of the
unchanged folder and of the folder with one file changed, materialising a version back into an
empty folder (loopml ``data get`` vs ``dvc checkout``), and profiling a 1,000,000-row table
(loopml only). Next to them, the raw floor measured in the same run: reading the same bytes and
hashing them with BLAKE3, and reading + hashing + writing a copy.

DVC runs from ``benchmarks/.venvs/dvc`` (created with ``pip install dvc==<version>`` the first
time) and only through its CLI, in a fresh ``dvc init --no-scm`` repository per measurement with
analytics off: it never enters loopml's interpreter. loopml is measured twice per workload: the
wall time of its ``loopml`` CLI (start-up included, like DVC's; the ratios use it) and the API
call alone, timed inside a fresh process after the imports. Every measurement gets fresh folders
(store, caches, DVC repository), so no cache helps across repeats; the sides alternate their
order across repeats and the table shows medians. The inputs are generated once (seeded) under
``benchmarks/.work/data/`` and read warm by every side: the OS page cache cannot be dropped
without root.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    WORK_DIR,
    WorkerError,
    cpu_model,
    ensure_venv,
    git_state,
    log,
    median,
    ram_gib,
    run_json,
    snapshot_loopml,
)

THIS = Path(__file__).resolve()
DVC_VERSION = "3.67.1"
DATA_DIR = WORK_DIR / "data"
INPUTS_DIR = DATA_DIR / "inputs"
RUNS_DIR = DATA_DIR / "runs"
SNAPSHOT_DIR = DATA_DIR / "snapshot"
TIMEOUT_S = 3600
SIDES = ("loopml", "dvc", "floor")
STAT_FIELDS = ("files", "files_hashed", "bytes_hashed", "bytes_stored", "seconds")
MIB = 2**20
CHUNK = 16 * MIB  # read size of the floor's chunked variants
BIG_NAME = "big.bin"
FOLDER_NAME = "files"


# -- the worker: one loopml call or one floor measurement in a fresh process --------------------
#
# ``python data.py --worker '{"op": ...}'`` prints one JSON line. Imports happen before the
# clock starts; only the operation itself is timed.


def _stats_dict(stats: Any) -> dict[str, Any]:
    return {name: getattr(stats, name, None) for name in STAT_FIELDS}


def _worker_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version()}
    for module in ("blake3", "numpy", "pyarrow"):
        try:
            info[module] = __import__(module).__version__
        except Exception as exc:  # report, do not fail: the driver decides what it needs
            info[module] = f"unavailable ({type(exc).__name__}: {exc})"
    try:
        import loopml

        info["loopml"] = loopml.__version__
        info["loopml_file"] = loopml.__file__
    except Exception as exc:
        info["loopml"] = None
        info["loopml_error"] = f"{type(exc).__name__}: {exc}"
    try:
        import loopml.data as data

        missing = [name for name in ("add", "get") if not callable(getattr(data, name, None))]
        info["data_error"] = f"loopml.data has no {' or '.join(missing)}()" if missing else None
    except Exception as exc:
        info["data_error"] = f"{type(exc).__name__}: {exc}"
    try:
        from loopml.data.profile import describe  # noqa: F401

        info["profile_error"] = None
    except Exception as exc:
        info["profile_error"] = f"{type(exc).__name__}: {exc}"
    return info


def _worker_add(name: str, path: str) -> dict[str, Any]:
    import loopml.data as data

    start = time.perf_counter()
    version = data.add(name, path)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "version": version.version,
        "hash": version.hash,
        "stats": _stats_dict(version.stats),
    }


def _worker_get(ref: str, dest: str) -> dict[str, Any]:
    import loopml.data as data

    start = time.perf_counter()
    data.get(ref).materialize(dest)
    return {"seconds": time.perf_counter() - start}


def _profile_table(rows: int, seed: int) -> Any:
    """1 table of ``rows`` x 20 columns: 12 float64, 4 int64, 3 low-cardinality strings, 1 bool."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([seed, 3])
    columns: dict[str, Any] = {}
    for i in range(12):
        columns[f"x{i}"] = pa.array(rng.normal(loc=i, scale=1 + i, size=rows))
    for i in range(4):
        columns[f"n{i}"] = pa.array(rng.integers(-(10 ** (i + 2)), 10 ** (i + 2), size=rows))
    for i, levels in enumerate((3, 12, 50)):
        labels = np.array([f"level_{i}_{k}" for k in range(levels)], dtype=object)
        columns[f"s{i}"] = pa.array(labels[rng.integers(0, levels, size=rows)], type=pa.string())
    columns["flag"] = pa.array(rng.random(rows) < 0.3)
    return pa.table(columns)


def _worker_profile(rows: int, seed: int) -> dict[str, Any]:
    from loopml.data.profile import describe

    table = _profile_table(rows, seed)
    start = time.perf_counter()
    result = describe(table)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": table.num_rows,
        "columns": table.num_columns,
        "result_type": type(result).__name__,
    }


def _blob_path(store: Path, digest: str) -> Path:
    return store / digest[:2] / digest[2:]


def _floor_big(kind: str, source: Path, dest: Path) -> dict[str, Any]:
    """The large file: each variant once, the fastest is the floor (all are reported)."""
    import blake3

    def hash_read(out: Path | None) -> str:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        with contextlib.ExitStack() as stack:
            src = stack.enter_context(open(source, "rb", buffering=0))
            dst = stack.enter_context(open(out, "wb")) if out is not None else None
            while n := src.readinto(buffer):
                hasher.update(view[:n])
                if dst is not None:
                    dst.write(view[:n])
        return str(hasher.hexdigest())

    def hash_mmap(out: Path | None) -> str:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(str(source))
        if out is not None:
            shutil.copyfile(source, out)  # copy_file_range: the kernel's own copy
        return str(hasher.hexdigest())

    variants: dict[str, Callable[[Path | None], str]] = {
        "read 16 MiB chunks" + (" + write" if kind == "hash_write" else ""): hash_read,
        "update_mmap" + (" + copyfile" if kind == "hash_write" else ""): hash_mmap,
    }
    if kind == "copy":
        out = dest / source.name
        start = time.perf_counter()
        shutil.copyfile(source, out)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "variants": {"copyfile": seconds}}
    times: dict[str, float] = {}
    for index, (label, fn) in enumerate(variants.items()):
        os.sync()  # the previous variant's writes are on disk before this one starts
        if kind == "hash":
            start = time.perf_counter()
            fn(None)
            times[label] = time.perf_counter() - start
        else:
            store = dest / f"store{index}"
            store.mkdir(parents=True)
            tmp = store / "incoming.tmp"
            start = time.perf_counter()
            digest = fn(tmp)
            target = _blob_path(store, digest)
            target.parent.mkdir()
            os.replace(tmp, target)
            times[label] = time.perf_counter() - start
    best = min(times, key=lambda label: times[label])
    return {"seconds": times[best], "best": best, "variants": times}


def _floor_folder(kind: str, source: Path, dest: Path) -> dict[str, Any]:
    """The small files: list, then read each whole, one ``blake3.blake3()`` per file."""
    import blake3

    start = time.perf_counter()
    names = sorted(entry.name for entry in os.scandir(source))
    made: set[str] = set()
    for name in names:
        with open(source / name, "rb") as src:
            content = src.read()
        if kind == "copy":
            with open(dest / name, "wb") as dst:
                dst.write(content)
            continue
        hasher = blake3.blake3()
        hasher.update(content)
        digest = hasher.hexdigest()
        if kind == "hash_write":
            if digest[:2] not in made:
                (dest / digest[:2]).mkdir(exist_ok=True)
                made.add(digest[:2])
            with open(_blob_path(dest, digest), "wb") as dst:
                dst.write(content)
    return {"seconds": time.perf_counter() - start, "files": len(names)}


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    op = spec["op"]
    if op == "info":
        return _worker_info()
    if op == "add":
        return _worker_add(spec["name"], spec["path"])
    if op == "get":
        return _worker_get(spec["ref"], spec["dest"])
    if op == "profile":
        return _worker_profile(spec["rows"], spec["seed"])
    if op == "floor":
        source, dest = Path(spec["source"]), Path(spec["dest"])
        dest.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            return _floor_big(spec["kind"], source, dest)
        return _floor_folder(spec["kind"], source, dest)
    raise ValueError(f"unknown worker op {op!r}")


# -- the inputs: generated once from a seed, reused while their sizes match --------------------


@dataclass(frozen=True)
class Sizes:
    big_bytes: int
    files: int
    file_bytes: int
    rows: int
    seed: int


def _random_bytes(seed: Sequence[int], size: int) -> bytes:
    """``size`` bytes of the PCG64 stream seeded with ``seed`` (numpy, about 1 GB/s)."""
    import numpy as np

    words = np.random.PCG64(list(seed)).random_raw((size + 7) // 8)
    return bytes(words.tobytes()[:size])


def _file_name(index: int) -> str:
    return f"f{index:06d}.bin"


@dataclass(frozen=True)
class Inputs:
    big: Path
    folder: Path
    sizes: Sizes

    @property
    def change_index(self) -> int:
        return self.sizes.files // 2

    def file_bytes(self, index: int, *, changed: bool = False) -> bytes:
        stream = 2 if changed else 1
        return _random_bytes((self.sizes.seed, stream, index), self.sizes.file_bytes)


def _write_big(path: Path, sizes: Sizes) -> None:
    import numpy as np

    generator = np.random.PCG64([sizes.seed, 0])
    left = sizes.big_bytes
    with open(path, "wb") as out:
        while left > 0:
            n = min(64 * MIB, left)
            out.write(generator.random_raw((n + 7) // 8).tobytes()[:n])
            left -= n


def _folder_ok(inputs: Inputs) -> bool:
    if not inputs.folder.is_dir():
        return False
    want = {_file_name(i) for i in range(inputs.sizes.files)}
    seen = {}
    for entry in os.scandir(inputs.folder):
        seen[entry.name] = entry.stat().st_size
    if set(seen) != want or any(size != inputs.sizes.file_bytes for size in seen.values()):
        return False
    # the one file the benchmark changes and restores: restored if a run died in between
    target = inputs.folder / _file_name(inputs.change_index)
    return target.read_bytes() == inputs.file_bytes(inputs.change_index)


def prepare_inputs(sizes: Sizes) -> Inputs:
    """Generate (or reuse) the big file and the folder of small files under INPUTS_DIR."""
    INPUTS_DIR.mkdir(parents=True, exist_ok=True)
    inputs = Inputs(INPUTS_DIR / BIG_NAME, INPUTS_DIR / FOLDER_NAME, sizes)
    manifest_path = INPUTS_DIR / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    want_big = {"seed": sizes.seed, "bytes": sizes.big_bytes, "format": 1}
    want_files = {
        "seed": sizes.seed,
        "count": sizes.files,
        "bytes": sizes.file_bytes,
        "format": 1,
    }
    big_ok = (
        manifest.get("big") == want_big
        and inputs.big.is_file()
        and inputs.big.stat().st_size == sizes.big_bytes
    )
    if not big_ok:
        log(f"generating {inputs.big} ({sizes.big_bytes / MIB:,.0f} MiB, seed {sizes.seed})")
        manifest.pop("big", None)
        manifest_path.write_text(json.dumps(manifest))
        inputs.big.unlink(missing_ok=True)
        _write_big(inputs.big, sizes)
        manifest["big"] = want_big
        manifest_path.write_text(json.dumps(manifest))
    if manifest.get("files") != want_files or not _folder_ok(inputs):
        log(f"generating {inputs.folder} ({sizes.files:,} files of {sizes.file_bytes:,} bytes)")
        manifest.pop("files", None)
        manifest_path.write_text(json.dumps(manifest))
        shutil.rmtree(inputs.folder, ignore_errors=True)
        inputs.folder.mkdir()
        for i in range(sizes.files):
            (inputs.folder / _file_name(i)).write_bytes(inputs.file_bytes(i))
        manifest["files"] = want_files
        manifest_path.write_text(json.dumps(manifest))
    return inputs


def warm(inputs: Inputs) -> None:
    """Read every input byte once, so all sides start from the same warm page cache."""
    with open(inputs.big, "rb", buffering=0) as src:
        buffer = bytearray(CHUNK)
        while src.readinto(buffer):
            pass
    for entry in os.scandir(inputs.folder):
        with open(entry.path, "rb") as src:
            src.read()


@contextlib.contextmanager
def moved(src: Path, dst: Path) -> Iterator[Path]:
    """Rename ``src`` to ``dst`` (same file system: free, the page cache stays warm), and back."""
    os.rename(src, dst)
    try:
        yield dst
    finally:
        if dst.exists():
            os.rename(dst, src)


@contextlib.contextmanager
def changed(inputs: Inputs, folder: Path) -> Iterator[Path]:
    """Give one file of ``folder`` new bytes of the same size (newer mtime); restore them after."""
    path = folder / _file_name(inputs.change_index)
    before = path.stat().st_mtime_ns
    path.write_bytes(inputs.file_bytes(inputs.change_index, changed=True))
    if path.stat().st_mtime_ns == before:  # a coarse clock: make the change visible to stat
        os.utime(path, ns=(before + 10**7, before + 10**7))
    try:
        yield path
    finally:
        path.write_bytes(inputs.file_bytes(inputs.change_index))


def verify(out: Path, source: Path) -> str | None:
    """None when ``out`` holds the same files as ``source`` (by name, anywhere below); else why."""
    found: dict[str, Path] = {}
    if out.is_file():
        found[out.name] = out
    for path in out.rglob("*") if out.is_dir() else ():
        if path.is_file():
            found.setdefault(path.name, path)
    if source.is_file():
        pairs = [(source, found.get(source.name))]
        if pairs[0][1] is None and len(found) == 1:
            pairs = [(source, next(iter(found.values())))]
    else:
        names = sorted(entry.name for entry in os.scandir(source))
        missing = [n for n in names if n not in found]
        if missing:
            return f"{len(missing)} of {len(names)} files missing, e.g. {missing[0]}"
        pairs = [(source / n, found[n]) for n in names]
    for want, got in pairs:
        if got is None:
            return f"{want.name} not written"
        if want.stat().st_size != got.stat().st_size:
            return f"{got} has {got.stat().st_size:,} bytes, not {want.stat().st_size:,}"
        with open(want, "rb") as a, open(got, "rb") as b:
            while True:
                block = a.read(CHUNK)
                if block != b.read(CHUNK):
                    return f"{got} differs from {want}"
                if not block:
                    break
    return None


# -- the workloads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    on_big: bool  # the large file (else the folder of small files)
    dvc: bool = True
    floors: tuple[str, ...] = ()
    target_ratio: float | None = None  # DVC / loopml (CLI), at least
    limit_s: float | None = None  # loopml (CLI) under this many seconds
    floor_factor: float | None = None  # loopml (CLI) within this factor of floor-hash_write
    hashed: str | None = None  # "none": 0 bytes hashed; "one": exactly 1 file hashed
    cli: bool = True

    def target_text(self) -> str:
        parts = []
        if self.target_ratio is not None:
            parts.append(f">={self.target_ratio:g}x DVC")
        if self.floor_factor is not None:
            parts.append(f"<={self.floor_factor:g}x floor (+write)")
        if self.limit_s is not None:
            parts.append(f"<{self.limit_s:g} s")
        if self.hashed == "none":
            parts.append("0 B hashed")
        if self.hashed == "one":
            parts.append("1 file hashed")
        return ", ".join(parts)


WORKLOADS = [
    Workload("add_file", "first add, 1 large file", True, floors=("hash", "hash_write"),
             target_ratio=4, floor_factor=2),
    Workload("add_folder", "first add, folder of small files", False,
             floors=("hash", "hash_write"), target_ratio=5),
    Workload("readd_unchanged", "re-add, folder unchanged", False, target_ratio=10, limit_s=0.5,
             hashed="none"),
    Workload("readd_one_changed", "re-add, folder with 1 file changed", False, limit_s=0.5,
             hashed="one"),
    Workload("get_folder", "get/checkout, folder", False, floors=("copy",), target_ratio=4),
    Workload("get_file", "get/checkout, large file", True, floors=("copy",), target_ratio=4),
    Workload("profile", "profile, table (describe)", False, dvc=False, limit_s=2, cli=False),
]  # fmt: skip
WORKLOAD_NAMES = [w.name for w in WORKLOADS]


@dataclass
class Context:
    inputs: Inputs
    loopml_bin: Path
    loopml_env: dict[str, str]  # PYTHONPATH of the snapshot, if any
    dvc_bin: Path | None

    def source(self, workload: Workload) -> Path:
        return self.inputs.big if workload.on_big else self.inputs.folder

    def expected_files(self, workload: Workload) -> int:
        return 1 if workload.on_big else self.inputs.sizes.files


def settle() -> None:
    """Flush pending writes (the previous step's) so they do not compete with the clock."""
    os.sync()


def timed_run(
    command: Sequence[str | Path], *, env: dict[str, str], cwd: Path
) -> tuple[float, str]:
    """Wall time of one CLI process, and its stdout; WorkerError when it fails."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [str(c) for c in command],
            cwd=cwd,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WorkerError(f"{Path(command[0]).name} timed out after {TIMEOUT_S}s") from exc
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        args = " ".join(str(c) for c in command[1:])
        raise WorkerError(f"{Path(command[0]).name} {args} exited {done.returncode}:\n{tail}")
    return seconds, done.stdout


def _json_doc(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise WorkerError("the loopml CLI printed nothing (expected --json output)") from None
        return json.loads(lines[-1])


def _worker_call(spec: dict[str, Any], env: dict[str, str], cwd: Path) -> Any:
    command = [sys.executable, str(THIS), "--worker", json.dumps(spec)]
    return run_json(command, cwd=cwd, env=env, timeout=TIMEOUT_S)


# loopml


def _loopml_env(ctx: Context, scratch: Path) -> dict[str, str]:
    return {
        **ctx.loopml_env,
        "LOOPML_TRACKING_URI": str(scratch / "store"),
        "LOOPML_CACHE_DIR": str(scratch / "cache"),
    }


def _loopml_add(
    ctx: Context, mode: str, env: dict[str, str], scratch: Path, name: str, path: Path
) -> dict[str, Any]:
    if mode == "api":
        result: dict[str, Any] = _worker_call(
            {"op": "add", "name": name, "path": str(path)}, env, scratch
        )
        return result
    command: list[str | Path] = [ctx.loopml_bin, "data", "add", name, path, "--json"]
    seconds, out = timed_run(command, env=env, cwd=scratch)
    doc = _json_doc(out)
    stats = doc.get("stats") or {}
    return {
        "seconds": seconds,
        "version": doc["version"],
        "hash": doc["hash"],
        "stats": {k: stats.get(k) for k in STAT_FIELDS},
    }


def _loopml_get(
    ctx: Context, mode: str, env: dict[str, str], scratch: Path, ref: str, dest: Path
) -> dict[str, Any]:
    if mode == "api":
        result: dict[str, Any] = _worker_call(
            {"op": "get", "ref": ref, "dest": str(dest)}, env, scratch
        )
        return result
    seconds, _ = timed_run([ctx.loopml_bin, "data", "get", ref, "-o", dest], env=env, cwd=scratch)
    return {"seconds": seconds}


def measure_loopml(ctx: Context, w: Workload, mode: str, scratch: Path) -> dict[str, Any]:
    env = _loopml_env(ctx, scratch)
    if w.name == "profile":
        spec = {"op": "profile", "rows": ctx.inputs.sizes.rows, "seed": ctx.inputs.sizes.seed}
        settle()
        result: dict[str, Any] = _worker_call(spec, env, scratch)
        return result
    source = ctx.source(w)
    name = "big" if w.on_big else "files"
    if w.name.startswith("add_"):
        settle()
        return _loopml_add(ctx, mode, env, scratch, name, source)
    first = _loopml_add(ctx, mode, env, scratch, name, source)  # untimed: the version to work on
    if w.name.startswith("readd_"):
        with changed(ctx.inputs, source) if w.hashed == "one" else contextlib.nullcontext():
            settle()
            result = _loopml_add(ctx, mode, env, scratch, name, source)
        return {**result, "first_version": first["version"], "first_hash": first["hash"]}
    dest = scratch / "out"
    dest.mkdir()
    settle()
    result = _loopml_get(ctx, mode, env, scratch, f"{name}@v{first['version']}", dest)
    return {**result, "version": first["version"], "verify": verify(dest, source)}


# DVC


def _dvc_env(scratch: Path) -> dict[str, str]:
    return {
        "DVC_NO_ANALYTICS": "1",
        # the state/index databases and the configs of this measurement only: fresh each time,
        # and no user or system config can change DVC's defaults
        "DVC_SITE_CACHE_DIR": str(scratch / "dvc-site-cache"),
        "DVC_GLOBAL_CONFIG_DIR": str(scratch / "dvc-global-config"),
        "DVC_SYSTEM_CONFIG_DIR": str(scratch / "dvc-system-config"),
    }


def _dvc(ctx: Context, scratch: Path, repo: Path, *args: str | Path) -> float:
    assert ctx.dvc_bin is not None
    seconds, _ = timed_run([ctx.dvc_bin, *args], env=_dvc_env(scratch), cwd=repo)
    return seconds


def _dvc_out(dvc_file: Path) -> dict[str, Any]:
    """md5, size and nfiles of the one output a ``.dvc`` file records."""
    text = dvc_file.read_text()
    out: dict[str, Any] = {}
    for key in ("md5", "size", "nfiles"):
        match = re.search(rf"^\s*-?\s*{key}:\s*(\S+)", text, re.MULTILINE)
        if match:
            out[key] = match.group(1) if key == "md5" else int(match.group(1))
    return out


def measure_dvc(ctx: Context, w: Workload, scratch: Path) -> dict[str, Any]:
    repo = scratch / "repo"
    repo.mkdir(parents=True)
    _dvc(ctx, scratch, repo, "init", "--no-scm", "-q")
    _dvc(ctx, scratch, repo, "config", "core.analytics", "false")
    source = ctx.source(w)
    target = repo / source.name
    dvc_file = repo / f"{source.name}.dvc"
    with moved(source, target):
        if w.name.startswith("add_"):
            settle()
            return {"seconds": _dvc(ctx, scratch, repo, "add", source.name), **_dvc_out(dvc_file)}
        _dvc(ctx, scratch, repo, "add", source.name)  # untimed: the version to work on
        first = _dvc_out(dvc_file)
        if w.name.startswith("readd_"):
            with changed(ctx.inputs, target) if w.hashed == "one" else contextlib.nullcontext():
                settle()
                seconds = _dvc(ctx, scratch, repo, "add", source.name)
            return {"seconds": seconds, **_dvc_out(dvc_file), "first_md5": first.get("md5")}
    # get: the workspace copy is gone (moved back to the inputs); DVC restores it from its cache
    settle()
    seconds = _dvc(ctx, scratch, repo, "checkout", dvc_file.name)
    return {"seconds": seconds, **first, "verify": verify(target, source)}


# the floor


def measure_floor(ctx: Context, w: Workload, kind: str, scratch: Path) -> dict[str, Any]:
    spec = {"op": "floor", "kind": kind, "source": str(ctx.source(w)), "dest": str(scratch)}
    settle()
    result: dict[str, Any] = _worker_call(spec, {}, scratch)
    return result


def measure(ctx: Context, w: Workload, side: str, scratch: Path) -> dict[str, Any]:
    if side.startswith("floor-"):
        return measure_floor(ctx, w, side.removeprefix("floor-"), scratch)
    if side == "dvc":
        return measure_dvc(ctx, w, scratch)
    return measure_loopml(ctx, w, side.removeprefix("loopml-"), scratch)


def sides_of(w: Workload, selected: Sequence[str]) -> list[str]:
    sides = []
    if "loopml" in selected:
        sides += ["loopml-cli", "loopml-api"] if w.cli else ["loopml-api"]
    if "dvc" in selected and w.dvc:
        sides.append("dvc")
    if "floor" in selected:
        sides += [f"floor-{kind}" for kind in w.floors]
    return sides


def check(ctx: Context, w: Workload, side: str, r: dict[str, Any]) -> list[str]:
    """Correctness of one measurement: what got stored, hashed and written back."""
    found = []
    want_files = ctx.expected_files(w)
    if r.get("verify"):
        found.append(f"wrong files written: {r['verify']}")
    if side.startswith("loopml-") and "stats" in r:
        stats = r["stats"]
        if stats.get("files") != want_files:
            found.append(f"stats.files is {stats.get('files')}, not {want_files:,}")
        if w.hashed == "none":
            if stats.get("bytes_hashed") != 0 or stats.get("files_hashed") != 0:
                found.append(
                    f"hashed {stats.get('files_hashed')} files / {stats.get('bytes_hashed')} "
                    "bytes of an unchanged folder (want 0)"
                )
            if r["hash"] != r["first_hash"]:
                found.append("the unchanged folder got a different hash")
        if w.hashed == "one":
            if stats.get("files_hashed") != 1:
                found.append(f"hashed {stats.get('files_hashed')} files (want exactly 1)")
            if r["hash"] == r["first_hash"]:
                found.append("the changed folder kept the same hash")
    if side == "dvc":
        if not r.get("md5"):
            found.append("no md5 in the .dvc file")
        elif not w.on_big and r.get("nfiles") != want_files:
            found.append(f"the .dvc file records {r.get('nfiles')} files, not {want_files:,}")
        if w.hashed == "none" and r.get("md5") != r.get("first_md5"):
            found.append("the unchanged folder got a different md5")
        if w.hashed == "one" and r.get("md5") == r.get("first_md5"):
            found.append("the changed folder kept the same md5")
    return found


@dataclass
class Sample:
    workload: str
    side: str
    repeat: int
    seconds: float
    extra: dict[str, Any]


@dataclass
class Row:
    workload: str
    title: str
    sizes: str
    medians: dict[str, float]  # side -> median seconds
    ratio: float | None
    hashed: str
    target: str
    met: bool | None
    partial: bool
    problems: list[str] = field(default_factory=list)


def run_workload(
    ctx: Context, w: Workload, selected: Sequence[str], repeats: int, keep: bool
) -> tuple[list[Sample], list[str]]:
    sides = sides_of(w, selected)
    samples: list[Sample] = []
    problems: list[str] = []
    for repeat in range(repeats):
        order = sides if repeat % 2 == 0 else sides[::-1]  # alternate: drift hits every side
        for side in order:
            scratch = RUNS_DIR / f"{w.name}-{side}-{repeat + 1}"
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            try:
                result = measure(ctx, w, side, scratch)
            except Exception as exc:  # record and go on: one broken side must not hide the rest
                message = f"{side} repeat {repeat + 1}: {type(exc).__name__}: {exc}"
                log(f"[red]{w.name}: {message}[/red]")
                problems.append(message)
                continue
            finally:
                if not keep:
                    shutil.rmtree(scratch, ignore_errors=True)
            for problem in check(ctx, w, side, result):
                problems.append(f"{side} repeat {repeat + 1}: {problem}")
                log(f"[red]{w.name}: {side}: {problem}[/red]")
            seconds = float(result.pop("seconds"))
            samples.append(Sample(w.name, side, repeat + 1, seconds, result))
            counters = ""
            if "stats" in result:
                stats = result["stats"]
                counters = (
                    f" (hashed {stats.get('files_hashed')} files, "
                    f"{stats.get('bytes_hashed')} bytes)"
                )
            log(f"{w.name}: {side} {repeat + 1}/{repeats} -> {seconds:.3f} s{counters}")
    return samples, problems


def summarise(ctx: Context, w: Workload, samples: list[Sample], problems: list[str]) -> Row:
    by_side: dict[str, list[Sample]] = {}
    for s in samples:
        by_side.setdefault(s.side, []).append(s)
    medians = {side: median([s.seconds for s in group]) for side, group in by_side.items()}
    loopml = medians.get("loopml-cli", medians.get("loopml-api"))
    dvc = medians.get("dvc")
    ratio = dvc / loopml if dvc and loopml else None
    checks: list[bool] = []
    wanted = 0
    if w.target_ratio is not None:
        wanted += 1
        if ratio is not None:
            checks.append(ratio >= w.target_ratio)
    if w.floor_factor is not None:
        wanted += 1
        floor = medians.get("floor-hash_write")
        if floor is not None and loopml is not None:
            checks.append(loopml <= w.floor_factor * floor)
    if w.limit_s is not None:
        wanted += 1
        if loopml is not None:
            checks.append(loopml < w.limit_s)
    counted = [s for side, group in by_side.items() if side.startswith("loopml") for s in group]
    counted = [s for s in counted if "stats" in s.extra]
    if w.hashed is not None:
        wanted += 1
        if counted:
            key, want = ("bytes_hashed", 0) if w.hashed == "none" else ("files_hashed", 1)
            checks.append(all(s.extra["stats"].get(key) == want for s in counted))
    hashed = sorted(
        {
            (s.extra["stats"].get("files_hashed"), s.extra["stats"].get("bytes_hashed"))
            for s in counted
        },
        key=str,
    )
    hashed_text = "; ".join(f"{_files(f)}, {_bytes(b)}" for f, b in hashed) or "-"
    sizes = ctx.inputs.sizes
    if w.name == "profile":
        size_text = f"{sizes.rows:,} rows x 20 cols"
    elif w.on_big:
        size_text = f"1 file, {_bytes(sizes.big_bytes)}"
    else:
        size_text = f"{sizes.files:,} x {_bytes(sizes.file_bytes)}"
    return Row(
        workload=w.name,
        title=w.title,
        sizes=size_text,
        medians=medians,
        ratio=ratio,
        hashed=hashed_text,
        target=w.target_text(),
        met=(all(checks) and not problems) if checks else None,
        partial=bool(checks) and len(checks) < wanted,
        problems=problems,
    )


# -- the machine and the report ---------------------------------------------------------------


def _bytes(n: int | None) -> str:
    if n is None:
        return "?"
    if n < 10_000:
        return f"{n:,} B"
    if n < 10 * MIB:
        return f"{n / 1024:,.0f} KiB"
    return f"{n / MIB:,.0f} MiB"


def _files(n: int | None) -> str:
    return "? files" if n is None else f"{n:,} file{'' if n == 1 else 's'}"


def _secs(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def _startup(command: Sequence[str | Path], env: dict[str, str], times: int = 3) -> float | None:
    """Median wall time of ``command`` (``--version``), after one untimed warm-up."""
    values = []
    for i in range(times + 1):
        try:
            seconds, _ = timed_run([str(c) for c in command], env=env, cwd=DATA_DIR)
        except (WorkerError, OSError):
            return None
        if i:
            values.append(seconds)
    return median(values)


def _fs_type(path: Path) -> str:
    for command in (["findmnt", "-n", "-o", "FSTYPE", "--target"], ["stat", "-f", "-c", "%T"]):
        try:
            done = subprocess.run(
                [*command, str(path)], capture_output=True, text=True, check=False
            )
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return "unknown"


def machine_info(ctx: Context, selected: Sequence[str], worker: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "work_dir": str(DATA_DIR),
        "work_fs": _fs_type(DATA_DIR),
        "loopml_git": git_state(),
        "worker": worker,
        "dvc": None,
        "startup_s": {},
    }
    if ctx.dvc_bin is not None:
        scratch = RUNS_DIR / "startup-dvc"
        scratch.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [str(ctx.dvc_bin), "--version"],
            capture_output=True,
            text=True,
            env={**os.environ, **_dvc_env(scratch)},
            check=False,
        )
        info["dvc"] = done.stdout.strip() or None
        info["startup_s"]["dvc --version"] = _startup([ctx.dvc_bin, "--version"], _dvc_env(scratch))
        shutil.rmtree(scratch, ignore_errors=True)
    if "loopml" in selected:
        info["startup_s"]["loopml --version"] = _startup(
            [ctx.loopml_bin, "--version"], ctx.loopml_env
        )
    return info


def floor_text(row: Row) -> str:
    parts = []
    for side, label in (
        ("floor-hash", "hash"),
        ("floor-hash_write", "+write"),
        ("floor-copy", "copy"),
    ):
        if side in row.medians:
            parts.append(f"{label} {_secs(row.medians[side])}")
    return ", ".join(parts) or "-"


HEADER = [
    "workload",
    "sizes",
    "loopml CLI",
    "loopml API",
    "DVC",
    "floor",
    "DVC/loopml",
    "loopml hashed",
    "target",
    "met?",
]
RIGHT = {2, 3, 4, 6}


def table_rows(rows: list[Row]) -> list[list[str]]:
    out = []
    for r in rows:
        met = "n/a" if r.met is None else ("yes" if r.met else "NO")
        if r.partial and r.met is not None:
            met += " (partial)"
        out.append(
            [
                r.title,
                r.sizes,
                _secs(r.medians.get("loopml-cli")),
                _secs(r.medians.get("loopml-api")),
                _secs(r.medians.get("dvc")),
                floor_text(r),
                "n/a" if r.ratio is None else f"{r.ratio:,.1f}x",
                r.hashed,
                r.target,
                met,
            ]
        )
    return out


def render_markdown(rows: list[list[str]]) -> str:
    everything = [HEADER, *rows]
    widths = [max(len(row[i]) for row in everything) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate(everything):
        cells = [
            c.rjust(w) if i in RIGHT else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append(
                "|"
                + "|".join(
                    ("-" * (w + 1) + ":") if i in RIGHT else "-" * (w + 2)
                    for i, w in enumerate(widths)
                )
                + "|"
            )
    return "\n".join(lines)


def print_table(rows: list[list[str]], title: str, markdown: bool) -> None:
    print(title + "\n")
    try:
        if markdown:
            raise ImportError
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(render_markdown(rows))
        return
    table = Table()
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="right" if i in RIGHT else "left")
    for row in rows:
        table.add_row(*row)
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 220).print(table)


def notes(info: dict[str, Any], sizes: Sizes, sides: Sequence[str]) -> list[str]:
    startup = ", ".join(f"{k} {_secs(v)}" for k, v in info["startup_s"].items() if v is not None)
    found = [
        "Warm files: the OS page cache cannot be dropped without root, so the inputs are read "
        "once before the first measurement and every side reads them warm; the sides alternate "
        "their order across repeats. os.sync() runs before each timed step.",
        "loopml CLI and DVC: wall time of one CLI process each, start-up included"
        + (f" ({startup})" if startup else "")
        + "; loopml API: the call alone, timed in a fresh process after its imports. The ratio "
        "and the time limits use loopml's CLI time (its API time where there is no CLI).",
        "DVC: `dvc add` / `dvc checkout <name>.dvc` in its default cache mode (cache.type "
        f"reflink,copy: copies on {info['work_fs']}), in a fresh `dvc init --no-scm` repository "
        "per measurement with its own cache and site cache dir, analytics off; for checkout the "
        "workspace copy is removed first. loopml: a fresh LOOPML_TRACKING_URI store and "
        "LOOPML_CACHE_DIR per measurement; get writes into an empty folder.",
        "Re-adds: one untimed add first in the same fresh store/repository, then the timed one; "
        f"'1 file changed' rewrites {_file_name(sizes.files // 2)} with other bytes of the same "
        "size (restored afterwards).",
        "floor (in-process, no tool): hash = list/read the same bytes and BLAKE3 them (large "
        "file: blake3(max_threads=AUTO), best of 16 MiB reads and update_mmap; small files: one "
        "blake3() each); +write = the same plus writing a copy into a content-addressed folder "
        "(best of chunked read+write and update_mmap+copyfile; no fsync); copy = the bytes "
        "copied into an empty folder, the floor of a get.",
    ]
    if "dvc" not in sides:
        found = [n for n in found if not n.startswith("DVC:")]
    if "floor" not in sides:
        found = [n for n in found if not n.startswith("floor")]
    return found


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", "--repeat", type=int, default=3, help="medians of N runs")
    parser.add_argument(
        "--quick", action="store_true", help="128 MiB, 2,000 files, 100,000 rows: a smoke run"
    )
    parser.add_argument("--big-mib", type=int, help="size of the large file (default 1024)")
    parser.add_argument("--files", type=int, help="number of small files (default 10,000)")
    parser.add_argument("--file-bytes", type=int, default=10 * 1024, help="default 10 KiB")
    parser.add_argument("--rows", type=int, help="rows of the profiled table (default 1e6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only",
        action="append",
        help="sides to run, a comma list of loopml, dvc, floor (default: all)",
    )
    parser.add_argument(
        "--workloads",
        action="append",
        help=f"workloads to run, a comma list of {', '.join(WORKLOAD_NAMES)} (default: all)",
    )
    parser.add_argument("--dvc-version", default=DVC_VERSION, help=f"default {DVC_VERSION}")
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="run loopml from the working tree instead of a copy of src/loopml taken at start",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders")
    parser.add_argument("--markdown", action="store_true", help="a markdown table, not rich")
    parser.add_argument(
        "--json",
        type=Path,
        default=WORK_DIR / "data.json",
        help="where to write every raw timing (default benchmarks/.work/data.json)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.only = _comma_list(parser, args.only, SIDES, "--only")
    args.workloads = _comma_list(parser, args.workloads, WORKLOAD_NAMES, "--workloads")
    big_mib = args.big_mib or (128 if args.quick else 1024)
    args.sizes = Sizes(
        big_bytes=big_mib * MIB,
        files=args.files or (2_000 if args.quick else 10_000),
        file_bytes=args.file_bytes,
        rows=args.rows or (100_000 if args.quick else 1_000_000),
        seed=args.seed,
    )
    return args


def _comma_list(
    parser: argparse.ArgumentParser, values: list[str] | None, allowed: Sequence[str], flag: str
) -> list[str]:
    if not values:
        return list(allowed)
    chosen = [v.strip() for value in values for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        parser.error(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return [v for v in allowed if v in chosen]


def _loopml_problem(
    args: argparse.Namespace, worker: dict[str, Any], loopml_bin: Path, env: dict[str, str]
) -> str | None:
    """Why loopml cannot be measured for the chosen workloads, or None."""
    hint = "Run the DVC and floor parts alone with --only dvc,floor"
    if worker.get("loopml_error"):
        return f"loopml cannot be imported ({worker['loopml_error']}). {hint}"
    if "profile" in args.workloads and worker.get("profile_error"):
        return (
            f"loopml.data.profile.describe cannot be imported ({worker['profile_error']}). "
            f"{hint}, or leave profile out of --workloads"
        )
    if not [w for w in args.workloads if w != "profile"]:
        return None  # the profile needs neither the versioning API nor the CLI
    if worker.get("data_error"):
        return (
            f"the loopml.data versioning API is not there ({worker['data_error']}). {hint}, "
            "or --workloads profile"
        )
    if not loopml_bin.exists():
        return f"the loopml CLI is not at {loopml_bin} (pip install -e . into this Python)"
    done = subprocess.run(
        [str(loopml_bin), "data", "add", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    if done.returncode != 0:
        return (
            f"`loopml data add --help` exited {done.returncode}: the CLI has no data commands "
            f"yet. {hint}, or --workloads profile"
        )
    return None


def setup(args: argparse.Namespace) -> tuple[Context, dict[str, Any]] | str:
    """The context to measure in, and the worker's versions; or why it cannot run."""
    use_snapshot = "loopml" in args.only and not args.no_snapshot
    loopml_env = snapshot_loopml(SNAPSHOT_DIR) if use_snapshot else {}
    worker = run_json(
        [sys.executable, str(THIS), "--worker", json.dumps({"op": "info"})],
        env=loopml_env,
        timeout=600,
    )
    for module in ("blake3", "numpy"):
        if str(worker.get(module, "")).startswith("unavailable"):
            return f"{module} is needed (inputs, floor): {worker[module]}"
    loopml_bin = Path(sys.executable).parent / "loopml"
    if "loopml" in args.only:
        problem = _loopml_problem(args, worker, loopml_bin, loopml_env)
        if problem:
            return problem
    dvc_bin = None
    if "dvc" in args.only:
        try:
            python = ensure_venv("dvc", "dvc", args.dvc_version)
        except (WorkerError, subprocess.CalledProcessError) as exc:
            return f"cannot install dvc=={args.dvc_version} into benchmarks/.venvs/dvc: {exc}"
        dvc_bin = python.parent / "dvc"
    if [w for w in args.workloads if w != "profile"]:
        inputs = prepare_inputs(args.sizes)
    else:  # the profile makes its own table
        inputs = Inputs(INPUTS_DIR / BIG_NAME, INPUTS_DIR / FOLDER_NAME, args.sizes)
    return Context(inputs, loopml_bin, loopml_env, dvc_bin), worker


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    shutil.rmtree(RUNS_DIR, ignore_errors=True)  # leftovers of a run that died
    RUNS_DIR.mkdir(parents=True)
    try:
        ready = setup(args)
    except WorkerError as exc:
        log(f"[red]setup failed:[/red] {exc}")
        return 2
    if isinstance(ready, str):
        log(f"[red]cannot run:[/red] {ready}")
        return 2
    ctx, worker = ready
    info = machine_info(ctx, args.only, worker)
    if [w for w in args.workloads if w != "profile"]:
        log("reading the inputs once (warm page cache for every side)")
        warm(ctx.inputs)
    samples: list[Sample] = []
    rows: list[Row] = []
    for w in WORKLOADS:
        if w.name not in args.workloads or not sides_of(w, args.only):
            continue
        got, problems = run_workload(ctx, w, args.only, args.repeats, args.keep)
        samples += got
        rows.append(summarise(ctx, w, got, problems))

    if args.quick:
        label = "QUICK SMOKE RUN (small sizes, not comparable)"
    elif args.sizes != Sizes(1024 * MIB, 10_000, 10 * 1024, 1_000_000, args.seed):
        label = "custom sizes (not the targets' sizes)"
    else:
        label = "full sizes"
    git = info["loopml_git"]
    loopml_text = f"loopml {worker.get('loopml')}" if "loopml" in args.only else "loopml skipped"
    dvc_text = f"DVC {info['dvc']}" if info["dvc"] else "DVC skipped"
    title = (
        f"Data benchmark: {label}; median of {args.repeats}; sides: {', '.join(args.only)}\n"
        f"{loopml_text} (commit {git['commit']}{', src/ modified' if git['src_dirty'] else ''}) "
        f"vs {dvc_text}\n"
        f"{info['cpu']}, {info['cores']} CPUs, {info['ram_gib']} GiB RAM, "
        f"Python {info['python']}, {info['work_fs']} at {DATA_DIR}"
    )
    print()
    print_table(table_rows(rows), title, args.markdown)
    print("\nNotes:")
    for note in notes(info, args.sizes, args.only):
        print(f"- {note}")
    for row in rows:
        for problem in row.problems:
            print(f"- PROBLEM {row.workload}: {problem}")
    report = {
        "benchmark": "data",
        "quick": args.quick,
        "repeats": args.repeats,
        "sides": args.only,
        "sizes": asdict(args.sizes),
        "seconds": time.perf_counter() - started,
        "machine": info,
        "results": [asdict(r) for r in rows],
        "samples": [asdict(s) for s in samples],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    log(f"raw timings written to {args.json}")
    return 1 if any(r.problems for r in rows) else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(json.loads(sys.argv[2]))), flush=True)
        sys.exit(0)
    sys.exit(main())
