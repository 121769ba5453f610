"""The MLflow side of benchmarks/serving.py; runs in benchmarks/.venvs/mlflow, never in loopml's.

Usage: ``python _serving_mlflow_worker.py '{"op": "save", "fitted": DIR, "out": DIR,
"kinds": ["lr", "rf"]}'``

``save`` writes each fitted model (the driver's joblib dump) as an MLflow model folder,
``<out>/<kind>``, with ``mlflow.sklearn.save_model`` and a tensor signature, which
``mlflow models serve -m <out>/<kind> --env-manager local`` then serves; it loads each folder
back with ``mlflow.pyfunc.load_model`` and reports the digest of its predictions on every row.
The JSON result is the last line on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving_data as data

# MLflow 3 saves scikit-learn models with skops and refuses a forest unless its tree type is
# trusted: its error message says to pass exactly this.
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


def save(fitted: Path, out: Path, kinds: list[str]) -> dict[str, Any]:
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import infer_signature

    X = data.features()
    found: dict[str, Any] = {"mlflow": mlflow.__version__, **data.versions(), "models": {}}
    requirements = mlflow.sklearn.get_default_pip_requirements(include_skops=True)
    for kind in kinds:
        model = data.load_fitted(fitted, kind)
        path = out / kind
        shutil.rmtree(path, ignore_errors=True)
        mlflow.sklearn.save_model(
            model,
            str(path),
            signature=infer_signature(X[:5], model.predict(X[:5])),
            pip_requirements=requirements,  # given: no requirement inference, not served anyway
            skops_trusted_types=TRUSTED_TYPES,
        )
        loaded = mlflow.pyfunc.load_model(str(path))
        found["models"][kind] = {"path": str(path), "digest": data.digest(loaded.predict(X))}
    return found


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec["op"] != "save":
        raise SystemExit(f"unknown op {spec['op']!r}")
    result = save(Path(spec["fitted"]), Path(spec["out"]), list(spec["kinds"]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
