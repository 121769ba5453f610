"""The MLServer side of benchmarks/serving.py; runs in benchmarks/.venvs/serving-mlserver.

Usage: ``python _serving_mlserver_worker.py '{"op": "save", "fitted": DIR, "out": DIR,
"kinds": ["lr", "rf"], "max_batch_size": 64, "max_batch_time_s": 0.002}'``

``save`` writes one model repository per model, ``<out>/<kind>/``: ``model.joblib`` (the
scikit-learn runtime's format, dumped with this environment's joblib) and a
``model-settings.json`` naming ``mlserver_sklearn.SKLearnModel`` with adaptive batching
(``max_batch_size``, ``max_batch_time``). ``mlserver start <out>/<kind>`` serves it; the
driver sets the ports through MLServer's ``MLSERVER_*`` environment variables. The dumped
files are loaded back and the digest of their predictions on every row reported. The JSON
result is the last line on stdout.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving_data as data


def save(
    fitted: Path, out: Path, kinds: list[str], max_batch_size: int, max_batch_time_s: float
) -> dict[str, Any]:
    import importlib.metadata

    import joblib

    X = data.features()
    found: dict[str, Any] = {
        "mlserver": importlib.metadata.version("mlserver"),
        "mlserver_sklearn": importlib.metadata.version("mlserver-sklearn"),
        "uvloop": importlib.metadata.version("uvloop"),
        **data.versions(),
        "models": {},
    }
    for kind in kinds:
        model = data.load_fitted(fitted, kind)
        folder = out / kind
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        joblib.dump(model, folder / "model.joblib")
        settings = {
            "name": kind,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"},
            "max_batch_size": max_batch_size,
            "max_batch_time": max_batch_time_s,
        }
        (folder / "model-settings.json").write_text(json.dumps(settings, indent=2))
        loaded = joblib.load(folder / "model.joblib")
        found["models"][kind] = {
            "folder": str(folder),
            "settings": settings,
            "digest": data.digest(loaded.predict(X)),
        }
    return found


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec["op"] != "save":
        raise SystemExit(f"unknown op {spec['op']!r}")
    result = save(
        Path(spec["fitted"]),
        Path(spec["out"]),
        list(spec["kinds"]),
        int(spec["max_batch_size"]),
        float(spec["max_batch_time_s"]),
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
