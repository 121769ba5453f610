"""The loopml side of benchmarks/serving.py: runs under loopml's interpreter (from the snapshot
of src/loopml the driver puts first on ``PYTHONPATH``).

Usage: ``python _serving_loopml_worker.py '{"op": "save", "fitted": DIR, "kinds": ["lr"]}'``

- ``info``: loopml's version and whether the model server (``loopml.serving.app``) is there.
- ``save``: logs each fitted model (the driver's joblib dump) with ``loopml.models.log_model``
  and an input example (a tensor signature: float64, shape (-1, 30)) into the store that
  ``LOOPML_TRACKING_URI`` names, registers it under its kind (``lr``, ``rf``), points the
  ``champion`` alias at that version and loads ``models:/<kind>@champion`` back to report the
  digest of its predictions on every row.
- ``inprocess``: the limit for any server: ``model.predict`` on the fitted scikit-learn model in
  this process, on 1 row and on 64 rows at a time, for ``seconds`` each (the driver pins this
  process to the server's cores); calls/s, rows/s and per-call latency percentiles.

The JSON result is the last line on stdout.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving_data as data

EXPERIMENT = "serving-bench"
ALIAS = "champion"


def info() -> dict[str, Any]:
    import loopml

    try:
        serving = importlib.util.find_spec("loopml.serving.app") is not None
    except ModuleNotFoundError:  # loopml.serving itself is missing
        serving = False
    return {
        "loopml": loopml.__version__,
        "loopml_file": loopml.__file__,
        "serving": serving,
        **data.versions(),
    }


def save(fitted: Path, kinds: list[str]) -> dict[str, Any]:
    import loopml
    import loopml.models
    import loopml.registry

    X = data.features()
    found: dict[str, Any] = {"loopml": loopml.__version__, **data.versions(), "models": {}}
    loopml.Client().get_or_create_experiment(EXPERIMENT)
    for kind in kinds:
        model = data.load_fitted(fitted, kind)
        with loopml.start_run(experiment=EXPERIMENT):
            logged = loopml.models.log_model(model, "model", input_example=X[:5])
        version = loopml.registry.register(logged.uri, kind)
        loopml.registry.set_alias(kind, ALIAS, int(version.version), reason="serving benchmark")
        uri = f"models:/{kind}@{ALIAS}"
        loaded = loopml.models.load(uri)
        signature = getattr(loaded, "signature", None)
        found["models"][kind] = {
            "uri": uri,
            "version": int(version.version),
            "signature": signature.to_dict() if signature is not None else None,
            "digest": data.digest(loaded.predict(X)),
        }
    return found


def _percentile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))] * 1000


def inprocess(fitted: Path, kinds: list[str], seconds: float) -> dict[str, Any]:
    X = data.features()
    found: dict[str, Any] = {**data.versions(), "models": {}}
    for kind in kinds:
        model = data.load_fitted(fitted, kind)
        figures = {}
        for batch in (1, 64):
            rows = [X[i : i + batch] for i in range(0, len(X) - batch + 1, batch)][:64]
            for chunk in rows[:5]:  # warm-up
                model.predict(chunk)
            latencies: list[float] = []
            begin = time.perf_counter()
            while time.perf_counter() - begin < seconds:
                chunk = rows[len(latencies) % len(rows)]
                start = time.perf_counter()
                model.predict(chunk)
                latencies.append(time.perf_counter() - start)
            elapsed = time.perf_counter() - begin
            figures[str(batch)] = {
                "calls": len(latencies),
                "calls_per_s": len(latencies) / elapsed,
                "rows_per_s": len(latencies) * batch / elapsed,
                "p50_ms": _percentile_ms(latencies, 50),
                "p99_ms": _percentile_ms(latencies, 99),
            }
        found["models"][kind] = figures
    return found


def main() -> None:
    spec = json.loads(sys.argv[1])
    op = spec["op"]
    if op == "info":
        result = info()
    elif op == "save":
        result = save(Path(spec["fitted"]), list(spec["kinds"]))
    elif op == "inprocess":
        result = inprocess(Path(spec["fitted"]), list(spec["kinds"]), float(spec["seconds"]))
    else:
        raise SystemExit(f"unknown op {op!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
