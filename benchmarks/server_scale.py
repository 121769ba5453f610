"""Server at scale (RELIABILITY L3): the run table and a compare view over 100,000 runs, each
with 50 params and 200 metric keys, through a real ``loopml server`` process.

    python3 benchmarks/server_scale.py                    # 100,000 runs, median of 5 repeats
    python3 benchmarks/server_scale.py --runs 2000        # a quick check (seconds)
    python3 benchmarks/server_scale.py --markdown --json out.json --explain
    python3 benchmarks/server_scale.py --backend postgresql://postgres@127.0.0.1:5432/scale

Building the store: the schema comes from opening ``SqlStore`` once (Alembic), one experiment
is created through it, and the runs go in through the database's own connection: the run
rows with ``executemany``, then params, metric history (``metrics``, one point per key) and
``latest_metrics`` with ``INSERT ... SELECT`` statements that cross-join the runs with the
keys, so the database generates the 45 million rows itself, a few thousand runs per
statement, in primary-key order (run ids are random, inserted sorted). The secondary indexes
of ``latest_metrics``, ``params`` and ``run_tags`` are dropped before and created again after,
from their own stored definitions. Values are functions of the run's index (see
``param_value``, ``metric_value``), so every answer can be checked without the database.

The SQLite file is cached in ``--cache-dir`` (default ``<tempdir>/loopml-scale``) under a name
made of the sizes, a data-format version and the schema's Alembic head, so later runs skip the
build; ``--rebuild`` forces one. With ``--backend postgresql://...`` the store is built in that
database (give it one of its own: the build writes ~11 GB at full size, in ~7 minutes here)
and reused while an experiment of the same name is complete there.

Measured through ``RestStore`` against ``python -m uvicorn loopml.server.factory:app_from_env
--factory`` (one worker, options in ``LOOPML_SERVER_OPTIONS``), after one untimed call of each
kind; median of ``--repeats``:

* the first page of the run table: ``search_runs([exp], None, ["start_time DESC"], 100)``;
* a first page ordered by a metric (``metrics.m0 DESC``: sorting the table by a column);
* a first page ordered by a metric and filtered by a param:
  ``params.p0 = 'v3'`` (a tenth of the runs), ``metrics.m0 DESC``;
* compare 100 runs (random ones, another sample each repeat): one search with
  ``run_id IN (...)`` and, separately, ``get_run`` x100;
* (for reference) a page deep in the table (offset = half the runs);
* the server's RSS (its process tree, psutil, every 20 ms) at idle and at its peak.

Server time is the server's own measure: the growth of ``loopml_http_request_seconds_sum``
on ``/metrics`` for the route over the call. Client time adds the transfer, the client's JSON
decoding and building the entities. The exit status is 1 when an answer was wrong (the wrong
runs, order or values); a missed target is only reported in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_model, git_state, log, median, ram_gib

#: bump when the generated data changes, so cached stores are rebuilt
DATA_FORMAT = 2
SEED = 20_250_311
BASE_TIME_MS = 1_700_000_000_000
RUN_SPACING_MS = 1_000
METRIC_STEP = 1
METRIC_DELAY_MS = 60_000
FILTER_VALUE = "v3"  # params.p0 takes v0..v9, so this matches a tenth of the runs
PAGE = 100
COMPARE = 100
RUNS_PER_STATEMENT = 2_000
READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
RSS_INTERVAL_S = 0.02
MB = 1_000_000

#: targets of the issue (RELIABILITY L3); the memory bound is this benchmark's own
FIRST_PAGE_LIMIT_S = 1.0
COMPARE_LIMIT_S = 3.0
RSS_LIMIT_MB = 200.0


@dataclass(frozen=True)
class Shape:
    runs: int
    params: int
    metrics: int

    @property
    def name(self) -> str:
        return f"scale-r{self.runs}-p{self.params}-m{self.metrics}-f{DATA_FORMAT}"


# -- the data: every value is a function of the run's index ------------------------------------


def run_ids(shape: Shape) -> list[str]:
    """The id of run ``i`` (random 32-hex-digit ids, reproducible; each shape its own, so
    several can share a database)."""
    rng = random.Random(f"{SEED}-{shape.name}")
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(shape.runs)]
    if len(set(ids)) != shape.runs:  # pragma: no cover - 128 random bits
        raise RuntimeError("duplicate run ids")
    return ids


def start_time(i: int) -> int:
    return BASE_TIME_MS + i * RUN_SPACING_MS


def param_key(j: int) -> str:
    return f"p{j}"


def metric_key(k: int) -> str:
    return f"m{k}"


def param_value(i: int, j: int) -> str:
    return f"v{i % 10}" if j == 0 else f"p{j}-{(i * (j + 1)) % 1000}"


def metric_value(i: int, k: int) -> float:
    return ((i * 7919 + k * 104729) % 100003) / 100003


# the same functions in SQL (SQLite and PostgreSQL): r is the scale_runs row, k the key row
_PARAM_SQL = (
    "CASE WHEN k.j = 0 THEN 'v' || (r.idx % 10) "
    "ELSE 'p' || k.j || '-' || ((r.idx * (k.j + 1)) % 1000) END"
)
_METRIC_SQL = "CAST(((r.idx * 7919 + k.j * 104729) % 100003) AS DOUBLE PRECISION) / 100003"


#: tables whose secondary indexes are dropped during the build and created after it
_BULK_TABLES = ("latest_metrics", "params", "run_tags")


@dataclass
class Built:
    url: str
    experiment_id: str
    build_s: float  # the build's duration (when it was built, possibly an earlier run)
    cached: bool
    db_bytes: int | None
    ids: list[str]


# -- building the store --------------------------------------------------------------------------


class _Loader:
    """The few statements of the build, in one DB-API connection (sqlite3 or psycopg)."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    def sql(self, text: str) -> str:
        if self.dialect == "sqlite":
            return text
        return text.replace("%", "%%").replace("?", "%s")  # psycopg's placeholders

    def execute(self, text: str, args: Sequence[Any] | None = None) -> Any:
        cur = self.conn.cursor()
        if args is None:
            cur.execute(text)
        else:
            cur.execute(self.sql(text), tuple(args))
        return cur

    def executemany(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        cur = self.conn.cursor()
        cur.executemany(self.sql(text), rows)

    def secondary_indexes(self, table: str) -> list[tuple[str, str]]:
        """``(name, CREATE INDEX ...)`` of the table's indexes other than its primary key."""
        if self.dialect == "sqlite":
            rows = self.execute(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                (table,),
            ).fetchall()
        else:
            rows = self.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                "WHERE i.tablename = ? AND i.schemaname = current_schema() "
                "AND i.indexname NOT IN (SELECT conname FROM pg_constraint)",
                (table,),
            ).fetchall()
        return [(str(name), str(ddl)) for name, ddl in rows]


def _fill(loader: _Loader, shape: Shape, experiment_id: int, ids: list[str]) -> None:
    """Insert the runs, params and metrics (the caller commits)."""
    order = sorted(range(shape.runs), key=ids.__getitem__)  # primary-key order
    rows = [
        (
            ids[i],
            experiment_id,
            f"run-{i:06d}",
            "FINISHED",
            start_time(i),
            start_time(i) + METRIC_DELAY_MS + 1,
            "bench",
            "scale",
        )
        for i in order
    ]
    loader.executemany(
        "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, end_time, "
        "user_name, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    loader.execute(
        "CREATE TEMP TABLE scale_runs "
        "(pos INTEGER PRIMARY KEY, run_id VARCHAR(32) NOT NULL, idx BIGINT NOT NULL)"
    )
    loader.executemany(
        "INSERT INTO scale_runs (pos, run_id, idx) VALUES (?, ?, ?)",
        [(pos, ids[i], i) for pos, i in enumerate(order)],
    )
    for table, count, name in (
        ("scale_pkeys", shape.params, param_key),
        ("scale_mkeys", shape.metrics, metric_key),
    ):
        loader.execute(
            f"CREATE TEMP TABLE {table} "
            '(pos INTEGER PRIMARY KEY, j BIGINT NOT NULL, "key" VARCHAR(500) NOT NULL)'
        )
        keys = sorted(range(count), key=name)  # inserted in key order, read in that order
        loader.executemany(
            f'INSERT INTO {table} (pos, j, "key") VALUES (?, ?, ?)',
            [(pos, j, name(j)) for pos, j in enumerate(keys)],
        )
    ordered = " ORDER BY r.pos, k.pos" if loader.dialect == "sqlite" else ""
    window = "WHERE r.pos >= ? AND r.pos < ?"
    params_sql = (
        f'INSERT INTO params (run_id, "key", value) SELECT r.run_id, k."key", {_PARAM_SQL} '
        f"FROM scale_runs r CROSS JOIN scale_pkeys k {window}{ordered}"
    )
    metric_select = (
        f'SELECT r.run_id, k."key", {METRIC_STEP}, '
        f"{BASE_TIME_MS} + r.idx * {RUN_SPACING_MS} + {METRIC_DELAY_MS}, {_METRIC_SQL}, FALSE "
        f"FROM scale_runs r CROSS JOIN scale_mkeys k {window}{ordered}"
    )
    columns = '(run_id, "key", step, "timestamp", value, is_nan)'
    began = time.perf_counter()
    for start in range(0, shape.runs, RUNS_PER_STATEMENT):
        window_args = (start, start + RUNS_PER_STATEMENT)
        loader.execute(params_sql, window_args)
        loader.execute(f"INSERT INTO metrics {columns} {metric_select}", window_args)
        loader.execute(f"INSERT INTO latest_metrics {columns} {metric_select}", window_args)
        done = min(start + RUNS_PER_STATEMENT, shape.runs)
        if done % (RUNS_PER_STATEMENT * 10) == 0 or done == shape.runs:
            rate = done / (time.perf_counter() - began)
            log(f"  {done:,} / {shape.runs:,} runs ({rate:,.0f} runs/s)")
    for table in ("scale_runs", "scale_pkeys", "scale_mkeys"):
        loader.execute(f"DROP TABLE {table}")


def _create_experiment(url: str, name: str, blobs: Path) -> str:
    from loopml.storage.blobs import BlobStore
    from loopml.storage.sql import SqlStore

    store = SqlStore(url, BlobStore(str(blobs)))  # creates or upgrades the schema (Alembic)
    try:
        return store.create_experiment(name, description="benchmarks/server_scale.py").experiment_id
    finally:
        store.close()


def schema_head() -> str:
    from loopml.storage.sql.migrate import alembic_head

    return alembic_head()


def build_sqlite(shape: Shape, cache_dir: Path, rebuild: bool) -> Built:
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{shape.name}-{schema_head()}"
    path = cache_dir / f"{stem}.db"
    info_path = cache_dir / f"{stem}.json"
    ids = run_ids(shape)
    if path.exists() and info_path.exists() and not rebuild:
        info = json.loads(info_path.read_text())
        log(f"using the cached store {path} (built in {info['build_s']:.0f} s)")
        return Built(
            f"sqlite:///{path}",
            info["experiment_id"],
            info["build_s"],
            True,
            path.stat().st_size,
            ids,
        )
    for stale in cache_dir.glob(f"{stem}.*"):
        stale.unlink()
    partial = cache_dir / f"{stem}.partial.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    log(f"building {shape.runs:,} runs x {shape.params} params x {shape.metrics} metrics in {path}")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loopml-scale-blobs-") as blobs:
        experiment_id = _create_experiment(f"sqlite:///{partial}", shape.name, Path(blobs))
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")  # a failed build is thrown away anyway
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB
        conn.execute("PRAGMA temp_store = MEMORY")
        loader = _Loader(conn, "sqlite")
        indexes = [ix for table in _BULK_TABLES for ix in loader.secondary_indexes(table)]
        conn.execute("BEGIN")
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        _fill(loader, shape, int(experiment_id), ids)
        conn.execute("COMMIT")
        log(f"  creating {len(indexes)} index(es) of {', '.join(_BULK_TABLES)}")
        conn.execute("BEGIN")
        for _, ddl in indexes:
            conn.execute(ddl)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")  # what the store sets on every connection
    finally:
        conn.close()
    build_s = time.perf_counter() - began
    os.replace(partial, path)
    for leftover in cache_dir.glob(f"{partial.name}*"):  # the schema migration's lock file
        leftover.unlink()
    info_path.write_text(json.dumps({"experiment_id": experiment_id, "build_s": build_s}))
    log(f"built in {build_s:.0f} s, {path.stat().st_size / 1e9:.2f} GB")
    return Built(f"sqlite:///{path}", experiment_id, build_s, False, path.stat().st_size, ids)


def _psycopg_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgresql") else url


def build_postgres(shape: Shape, url: str, rebuild: bool) -> Built:
    import psycopg

    ids = run_ids(shape)
    name = shape.name  # the schema is upgraded in place, data and all: no revision in it
    with tempfile.TemporaryDirectory(prefix="loopml-scale-blobs-") as blobs:
        from loopml.storage.blobs import BlobStore
        from loopml.storage.sql import SqlStore

        SqlStore(url, BlobStore(blobs)).close()  # the schema, created or upgraded
    with psycopg.connect(_psycopg_url(url)) as conn:
        row = conn.execute(
            "SELECT e.experiment_id, t.value FROM experiments e LEFT JOIN experiment_tags t "
            "ON t.experiment_id = e.experiment_id AND t.key = 'scale.build_s' "
            "WHERE e.name = %s",
            (name,),
        ).fetchone()
        if row is not None and row[1] is not None and not rebuild:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            log(f"using the experiment {name!r} already built in {url}")
            return Built(url, str(row[0]), float(row[1]), True, size and int(size[0]), ids)
        if row is not None:  # incomplete, or a rebuild: runs and their rows go by cascade
            log(f"deleting the experiment {name!r} of an earlier build")
            conn.execute("DELETE FROM experiments WHERE experiment_id = %s", (row[0],))
            conn.commit()
    log(f"building {shape.runs:,} runs x {shape.params} params x {shape.metrics} metrics in {url}")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loopml-scale-blobs-") as blobs:
        experiment_id = _create_experiment(url, name, Path(blobs))
    with psycopg.connect(_psycopg_url(url)) as conn:
        loader = _Loader(conn, "postgresql")
        try:  # no foreign-key triggers per row (needs a superuser; else they run)
            conn.execute("SET session_replication_role = replica")
        except psycopg.Error:
            conn.rollback()
        indexes = [ix for table in _BULK_TABLES for ix in loader.secondary_indexes(table)]
        for index, _ in indexes:
            conn.execute(f'DROP INDEX "{index}"')
        _fill(loader, shape, int(experiment_id), ids)
        log(f"  creating {len(indexes)} index(es) of {', '.join(_BULK_TABLES)}")
        for _, ddl in indexes:
            conn.execute(ddl)
        build_s = time.perf_counter() - began
        conn.execute(
            "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (%s, %s, %s)",
            (int(experiment_id), "scale.build_s", f"{build_s:.1f}"),
        )
        conn.commit()
    with psycopg.connect(_psycopg_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE")  # what autovacuum would do soon after such a load
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    log(f"built in {build_s:.0f} s")
    return Built(url, experiment_id, build_s, False, size and int(size[0]), ids)


# -- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """``python -m uvicorn loopml.server.factory:app_from_env --factory`` over ``backend``."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.backend = backend
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        from loopml.server.factory import APP_ENV, encode_options

        options = encode_options(backend_store=self.backend, artifacts=str(self.folder / "blobs"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
        env[APP_ENV] = options
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "loopml.server.factory:app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        began = time.perf_counter()
        with open(self.log_path, "wb") as sink:
            self.process = subprocess.Popen(
                command,
                cwd=self.folder,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        import httpx

        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            if time.perf_counter() - began > READY_TIMEOUT_S:
                raise RuntimeError(f"the server did not answer /health:\n{self.log_tail()}")
            time.sleep(0.05)

    def processes(self) -> list[Any]:
        import psutil

        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process = None


class RssSampler:
    """The RSS of the server's process tree every ``RSS_INTERVAL_S`` (and its anonymous part:
    RSS less the resident file-backed pages, psutil's ``shared``)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            rss = anonymous = 0
            for proc in self.server.processes():
                try:
                    memory = proc.memory_info()
                except psutil.NoSuchProcess:
                    continue
                rss += memory.rss
                anonymous += memory.rss - getattr(memory, "shared", 0)
            self.samples.append((time.monotonic(), rss, anonymous))
            self._stop.wait(RSS_INTERVAL_S)

    def window(self, start: float, end: float) -> list[tuple[int, int]]:
        return [(rss, anon) for t, rss, anon in self.samples if start <= t <= end]


_SUM = re.compile(
    r'^loopml_http_request_seconds_(sum|count)\{method="(\w+)",route="([^"]+)"\} (\S+)$'
)


def server_clock(url: str) -> dict[tuple[str, str], float]:
    """``(method, route) -> seconds`` the server has spent on each route so far."""
    import httpx

    found: dict[tuple[str, str], float] = {}
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        match = _SUM.match(line)
        if match and match.group(1) == "sum":
            found[(match.group(2), match.group(3))] = float(match.group(4))
    return found


# -- the workloads -------------------------------------------------------------------------------


@dataclass
class Sample:
    client_s: float
    server_s: float
    problems: list[str] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    limit_s: float | None  # the target, on the time named by ``limit_on``
    limit_on: str  # "server" or "client"
    run: Callable[[Any, int], tuple[Sample, list[str]]]  # (store, repeat) -> sample, problems


def _check_runs(
    found: Sequence[Any], expected: Sequence[int], ids: list[str], shape: Shape
) -> list[str]:
    """Problems with a page: the wrong runs, order, params or metrics."""
    problems: list[str] = []
    got = [run.info.run_id for run in found]
    want = [ids[i] for i in expected]
    if got != want:
        same = len(set(got) & set(want))
        problems.append(
            f"got {len(got)} runs, {same} of the {len(want)} expected, or another order"
        )
        return problems
    for run, i in zip(found, expected, strict=True):
        params = run.data.params
        metrics = run.data.metrics
        if len(params) != shape.params or len(metrics) != shape.metrics:
            problems.append(f"run {i}: {len(params)} params, {len(metrics)} metrics")
            break
        if params.get("p0") != param_value(i, 0) or params.get(param_key(shape.params - 1)) != (
            param_value(i, shape.params - 1)
        ):
            problems.append(f"run {i}: wrong param values")
            break
        last = metric_key(shape.metrics - 1)
        if metrics.get("m0") != metric_value(i, 0) or metrics.get(last) != metric_value(
            i, shape.metrics - 1
        ):
            problems.append(f"run {i}: wrong metric values")
            break
    return problems


def _timed(store: Any, route: tuple[str, str], call: Callable[[], Any]) -> tuple[float, float, Any]:
    before = server_clock(store.uri).get(route, 0.0)
    began = time.perf_counter()
    result = call()
    client_s = time.perf_counter() - began
    server_s = server_clock(store.uri).get(route, 0.0) - before
    return client_s, server_s, result


SEARCH = ("POST", "/api/v1/runs/search")
GET_RUN = ("GET", "/api/v1/runs/{run_id}")


def make_workloads(shape: Shape, built: Built, deep: bool) -> list[Workload]:
    ids, exp = built.ids, built.experiment_id
    newest = list(range(shape.runs - 1, -1, -1))
    matching = [i for i in newest if param_value(i, 0) == FILTER_VALUE]

    def by_m0(i: int) -> tuple[float, int, str]:
        return (-metric_value(i, 0), -start_time(i), ids[i])

    by_metric = sorted(matching, key=by_m0)
    all_by_metric = sorted(newest, key=by_m0)[:PAGE]

    def first_page(store: Any, repeat: int) -> tuple[Sample, list[str]]:
        client_s, server_s, page = _timed(
            store, SEARCH, lambda: store.search_runs([exp], None, ["start_time DESC"], PAGE)
        )
        problems = _check_runs(page, newest[:PAGE], ids, shape)
        if shape.runs > PAGE and not page.next_page_token:
            problems.append("no next_page_token")
        return Sample(client_s, server_s), problems

    def order_page(store: Any, repeat: int) -> tuple[Sample, list[str]]:
        client_s, server_s, page = _timed(
            store, SEARCH, lambda: store.search_runs([exp], None, ["metrics.m0 DESC"], PAGE)
        )
        return Sample(client_s, server_s), _check_runs(page, all_by_metric[:PAGE], ids, shape)

    def metric_page(store: Any, repeat: int) -> tuple[Sample, list[str]]:
        client_s, server_s, page = _timed(
            store,
            SEARCH,
            lambda: store.search_runs(
                [exp], f"params.p0 = '{FILTER_VALUE}'", ["metrics.m0 DESC"], PAGE
            ),
        )
        return Sample(client_s, server_s), _check_runs(page, by_metric[:PAGE], ids, shape)

    def sample(repeat: int) -> list[int]:
        return sorted(
            random.Random(SEED + repeat).sample(range(shape.runs), min(COMPARE, shape.runs))
        )

    def compare_search(store: Any, repeat: int) -> tuple[Sample, list[str]]:
        chosen = sample(repeat)
        quoted = ", ".join(f"'{ids[i]}'" for i in chosen)
        client_s, server_s, page = _timed(
            store,
            SEARCH,
            lambda: store.search_runs([exp], f"run_id IN ({quoted})", ["start_time DESC"], COMPARE),
        )
        return Sample(client_s, server_s), _check_runs(page, chosen[::-1], ids, shape)

    def compare_get(store: Any, repeat: int) -> tuple[Sample, list[str]]:
        chosen = sample(repeat)
        client_s, server_s, found = _timed(
            store, GET_RUN, lambda: [store.get_run(ids[i]) for i in chosen]
        )
        return Sample(client_s, server_s), _check_runs(found, chosen, ids, shape)

    def deep_page(store: Any, repeat: int) -> tuple[Sample, list[str]]:
        from loopml.storage.sql.search import _encode_token  # the offset token, for reference

        offset = (shape.runs // 2) // PAGE * PAGE
        token = _encode_token(offset)
        client_s, server_s, page = _timed(
            store,
            SEARCH,
            lambda: store.search_runs([exp], None, ["start_time DESC"], PAGE, token),
        )
        return Sample(client_s, server_s), _check_runs(
            page, newest[offset : offset + PAGE], ids, shape
        )

    found = [
        Workload(
            "first_page",
            f"run table, first page ({PAGE} runs, start_time DESC)",
            FIRST_PAGE_LIMIT_S,
            "server",
            first_page,
        ),
        Workload(
            "order_page",
            "first page, metrics.m0 DESC (sort by a metric column)",
            FIRST_PAGE_LIMIT_S,
            "server",
            order_page,
        ),
        Workload(
            "metric_page",
            f"first page, params.p0 = '{FILTER_VALUE}', metrics.m0 DESC",
            FIRST_PAGE_LIMIT_S,
            "server",
            metric_page,
        ),
        Workload(
            "compare_search",
            f"compare {COMPARE} runs: one search, run_id IN (...)",
            COMPARE_LIMIT_S,
            "client",
            compare_search,
        ),
        Workload(
            "compare_get",
            f"compare {COMPARE} runs: get_run x{COMPARE}",
            COMPARE_LIMIT_S,
            "client",
            compare_get,
        ),
    ]
    if deep:
        found.append(
            Workload(
                "deep_page",
                f"a page at offset {(shape.runs // 2) // PAGE * PAGE:,} (reference)",
                None,
                "server",
                deep_page,
            )
        )
    return found


# -- diagnostics: the SQL of a search, its plan, and its time in-process ----------------------


@contextmanager
def _captured(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    from sqlalchemy import event

    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, text: str, args: Any, context: Any, many: bool) -> None:
        statements.append((text, args))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def explain(built: Built, shape: Shape) -> dict[str, Any]:
    """Each search's SQL, its query plan, and the store's time without HTTP (in-process)."""
    from loopml.storage.blobs import BlobStore
    from loopml.storage.sql import SqlStore

    found: dict[str, Any] = {}
    chosen = random.Random(SEED).sample(built.ids, min(COMPARE, len(built.ids)))
    searches = {
        "first_page": (None, ["start_time DESC"]),
        "order_page": (None, ["metrics.m0 DESC"]),
        "metric_page": (f"params.p0 = '{FILTER_VALUE}'", ["metrics.m0 DESC"]),
        "compare_search": (
            "run_id IN ({})".format(", ".join(f"'{run_id}'" for run_id in chosen)),
            ["start_time DESC"],
        ),
    }
    with tempfile.TemporaryDirectory(prefix="loopml-scale-explain-") as blobs:
        store = SqlStore(built.url, BlobStore(blobs))
        try:
            engine = store._db.engine
            for name, (filter_string, order_by) in searches.items():
                store.search_runs([built.experiment_id], filter_string, order_by, PAGE)  # warm
                times = []
                for _ in range(3):
                    began = time.perf_counter()
                    store.search_runs([built.experiment_id], filter_string, order_by, PAGE)
                    times.append(time.perf_counter() - began)
                with _captured(engine) as statements:
                    began = time.perf_counter()
                    store.search_runs([built.experiment_id], filter_string, order_by, PAGE)
                    elapsed = time.perf_counter() - began
                text, args = next(s for s in statements if "FROM runs" in s[0])
                with engine.connect() as conn:
                    cursor = conn.connection.cursor()
                    began = time.perf_counter()
                    cursor.execute(text, args)
                    cursor.fetchall()
                    query_s = time.perf_counter() - began
                    prefix = (
                        "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
                    )
                    cursor.execute(prefix + text, args)
                    plan = [" | ".join(str(c) for c in row) for row in cursor.fetchall()]
                    cursor.close()
                found[name] = {
                    "sql": text,
                    "plan": plan,
                    "store_s": median(times),
                    "query_s": query_s,
                    "captured_s": elapsed,
                }
                log(
                    f"{name}: in-process search_runs {median(times) * 1000:.0f} ms, "
                    f"the search query alone {query_s * 1000:.0f} ms; plan:\n  " + "\n  ".join(plan)
                )
        finally:
            store.close()
    return found


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    title: str
    client_median_s: float
    server_median_s: float
    server_max_s: float
    target: str
    met: bool | None
    problems: list[str]
    cold_client_s: float
    cold_server_s: float


def measure(
    built: Built, shape: Shape, repeats: int, deep: bool
) -> tuple[list[Row], dict[str, Any]]:
    from loopml.storage.rest import RestStore

    workloads = make_workloads(shape, built, deep)
    folder = Path(tempfile.mkdtemp(prefix="loopml-scale-server-"))
    server = Server(built.url, folder)
    memory: dict[str, Any] = {}
    rows: list[Row] = []
    try:
        start_s = server.start()
        log(f"server on {server.url} answered /health after {start_s:.1f} s")
        store = RestStore(server.url, timeout=300, retry_seconds=0)
        with RssSampler(server) as sampler:
            time.sleep(1.0)
            idle_end = time.monotonic()
            store.get_experiment(built.experiment_id)  # the first request's imports
            time.sleep(0.5)
            idle = sampler.window(idle_end - 1.0, idle_end)
            busy_start = time.monotonic()
            samples: dict[str, list[Sample]] = {w.name: [] for w in workloads}
            problems: dict[str, list[str]] = {w.name: [] for w in workloads}
            cold: dict[str, Sample] = {}
            for workload in workloads:  # untimed warm-up; kept as the cold figure
                sample, bad = workload.run(store, -1)
                cold[workload.name] = sample
                problems[workload.name] += [f"warm-up: {p}" for p in bad]
                log(
                    f"{workload.name} (first call): client {sample.client_s * 1000:.0f} ms, "
                    f"server {sample.server_s * 1000:.0f} ms"
                )
            for repeat in range(repeats):
                for workload in workloads:
                    sample, bad = workload.run(store, repeat)
                    samples[workload.name].append(sample)
                    problems[workload.name] += [f"repeat {repeat + 1}: {p}" for p in bad]
                log(
                    f"repeat {repeat + 1}/{repeats}: "
                    + ", ".join(
                        f"{w.name} {samples[w.name][-1].server_s * 1000:.0f}/"
                        f"{samples[w.name][-1].client_s * 1000:.0f} ms"
                        for w in workloads
                    )
                )
            busy = sampler.window(busy_start, time.monotonic())
        store.close()
        idle_rss = median([float(r) for r, _ in idle])
        idle_anon = median([float(a) for _, a in idle])
        memory = {
            "idle_rss_mb": idle_rss / MB,
            "peak_rss_mb": max(r for r, _ in busy) / MB,
            "peak_above_idle_mb": (max(r for r, _ in busy) - idle_rss) / MB,
            "idle_anon_mb": idle_anon / MB,
            "peak_anon_above_idle_mb": (max(a for _, a in busy) - idle_anon) / MB,
            "samples": len(busy),
            "server_start_s": start_s,
        }
        for w in workloads:
            got = samples[w.name]
            client = median([s.client_s for s in got])
            server_times = [s.server_s for s in got]
            on = median(server_times) if w.limit_on == "server" else client
            met = None if w.limit_s is None else (on < w.limit_s and not problems[w.name])
            target = "" if w.limit_s is None else f"< {w.limit_s:g} s ({w.limit_on})"
            rows.append(
                Row(
                    w.name,
                    w.title,
                    client,
                    median(server_times),
                    max(server_times),
                    target,
                    met,
                    problems[w.name],
                    cold[w.name].client_s,
                    cold[w.name].server_s,
                )
            )
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return rows, memory


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def table_rows(rows: list[Row], memory: dict[str, Any], built: Built) -> list[list[str]]:
    out = []
    for row in rows:
        verdict = "n/a" if row.met is None else ("yes" if row.met else "NO")
        if row.problems:
            verdict += f" ({len(row.problems)} wrong answers)"
        out.append(
            [
                row.title,
                _ms(row.server_median_s),
                _ms(row.client_median_s),
                _ms(row.server_max_s),
                f"{_ms(row.cold_server_s)} / {_ms(row.cold_client_s)}",
                row.target or "-",
                verdict,
            ]
        )
    if memory:
        peak = memory["peak_above_idle_mb"]
        out.append(
            [
                "server peak RSS above idle",
                f"{peak:,.1f} MB",
                f"idle {memory['idle_rss_mb']:,.0f} MB",
                f"peak {memory['peak_rss_mb']:,.0f} MB",
                f"anonymous +{memory['peak_anon_above_idle_mb']:,.1f} MB",
                f"< {RSS_LIMIT_MB:g} MB",
                "yes" if peak < RSS_LIMIT_MB else "NO",
            ]
        )
    cached = " (cached; built earlier)" if built.cached else ""
    out.append(["store build", _ms(built.build_s) + cached, "", "", "", "-", "-"])
    if built.db_bytes is not None:
        out.append(["database size", f"{built.db_bytes / 1e9:,.2f} GB", "", "", "", "-", "-"])
    return out


HEADER = [
    "measure",
    "server (median)",
    "client (median)",
    "server max",
    "first call s/c",
    "target",
    "met?",
]


def print_table(rows: list[list[str]], title: str, markdown: bool) -> None:
    print(title + "\n")
    if not markdown:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            markdown = True
        else:
            table = Table()
            for i, name in enumerate(HEADER):
                table.add_column(name, justify="left" if i in (0, 5, 6) else "right")
            for row in rows:
                table.add_row(*row)
            Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200).print(table)
            return
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "|".join("---" if i in (0, 5, 6) else "--:" for i in range(len(HEADER))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the experiment")
    parser.add_argument("--params", type=int, default=50, help="params per run")
    parser.add_argument("--metrics", type=int, default=200, help="metric keys per run")
    parser.add_argument("--repeats", type=int, default=5, help="medians of N calls")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "loopml-scale",
        help="where built SQLite stores are kept (default: <tempdir>/loopml-scale)",
    )
    parser.add_argument("--rebuild", action="store_true", help="build even if cached")
    parser.add_argument(
        "--backend",
        default=None,
        help="a postgresql://... URL to build and serve there instead of SQLite",
    )
    parser.add_argument("--no-deep", action="store_true", help="skip the deep-page reference")
    parser.add_argument(
        "--explain", action="store_true", help="also print each search's SQL plan and store time"
    )
    parser.add_argument("--markdown", action="store_true", help="a markdown table, not rich")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.params < 1 or args.metrics < 1 or args.repeats < 1:
        parser.error("--runs, --params, --metrics and --repeats must be >= 1")
    if args.backend and not args.backend.startswith("postgresql"):
        parser.error("--backend takes a postgresql://... URL (SQLite is the default)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shape = Shape(args.runs, args.params, args.metrics)
    if args.backend:
        built = build_postgres(shape, args.backend, args.rebuild)
    else:
        built = build_sqlite(shape, args.cache_dir, args.rebuild)
    diagnostics = explain(built, shape) if args.explain else {}
    rows, memory = measure(built, shape, args.repeats, deep=not args.no_deep)
    backend = "PostgreSQL" if args.backend else "SQLite"
    title = (
        f"loopml server at scale ({backend}): {shape.runs:,} runs x {shape.params} params x "
        f"{shape.metrics} metric keys, median of {args.repeats}; {os.cpu_count()} CPUs "
        f"({cpu_model()}), Python {platform.python_version()}"
    )
    print_table(table_rows(rows, memory, built), title, args.markdown)
    for row in rows:
        for problem in row.problems[:5]:
            print(f"{row.name}: {problem}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "shape": asdict(shape),
            "backend": backend,
            "build_s": built.build_s,
            "cached": built.cached,
            "db_bytes": built.db_bytes,
            "rows": [asdict(r) for r in rows],
            "memory": memory,
            "explain": diagnostics,
            "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "ram_gib": ram_gib()},
            "git": git_state(),
        }
        args.json.write_text(json.dumps(document, indent=2))
    failed = any(r.problems for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
