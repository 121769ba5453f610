"""One drift check by a peer tool, for benchmarks/monitoring.py (run in the peer's virtualenv).

    python _monitoring_peer_worker.py '{"tool": "evidently", "reference": "ref.parquet",
        "current": "cur.parquet", "numeric": [...], "categorical": [...]}'

Reads both Parquet files with pandas before the clock starts, then times the tool's default
drift check and prints one JSON line: the measurements (``_monitoring_measure.Meter``), the
columns the tool flagged, and the tool's version.

- evidently: ``Report([DataDriftPreset()])`` run on two ``Dataset``s whose ``DataDefinition``
  names the numeric and categorical columns; a column is flagged when its ``ValueDrift`` says
  so (a distance at or above its threshold, or a p-value below it: Evidently's own rule).
- nannyml: ``UnivariateDriftCalculator`` with its default methods and chunking, fitted on the
  reference and run on the current table; a column is flagged when any chunk of the current
  table raises an alert.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

from _monitoring_measure import Meter


def _evidently(reference: Any, current: Any, spec: dict[str, Any]) -> dict[str, Any]:
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    with Meter() as meter:
        definition = DataDefinition(
            numerical_columns=spec["numeric"], categorical_columns=spec["categorical"]
        )
        snapshot = Report([DataDriftPreset()]).run(
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
            current_data=Dataset.from_pandas(current, data_definition=definition),
        )
        metrics = snapshot.dict()["metrics"]
    flagged, methods = [], {}
    for metric in metrics:
        config = metric.get("config", {})
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        column, method, threshold = config["column"], config["method"], config["threshold"]
        value = metric["value"]
        drifted = value < threshold if "p_value" in method else value >= threshold
        methods[column] = f"{method} >= {threshold}" if "p_value" not in method else method
        if drifted:
            flagged.append(column)
    return {
        **meter.result(),
        "flagged": flagged,
        "methods": methods,
        "version": evidently.__version__,
    }


def _nannyml(reference: Any, current: Any, spec: dict[str, Any]) -> dict[str, Any]:
    import nannyml

    columns = spec["numeric"] + spec["categorical"]
    with Meter() as meter:
        calculator = nannyml.UnivariateDriftCalculator(
            column_names=columns, treat_as_categorical=spec["categorical"]
        )
        calculator.fit(reference)
        results = calculator.calculate(current)
        frame = results.filter(period="analysis").to_df()
    flagged, alerts = [], 0
    for column in columns:
        alert_columns = [c for c in frame.columns if c[0] == column and c[-1] == "alert"]
        count = int(sum(frame[c].fillna(False).astype(bool).sum() for c in alert_columns))
        alerts += count
        if count:
            flagged.append(column)
    return {
        **meter.result(),
        "flagged": flagged,
        "alerts": alerts,
        "chunks": len(frame),
        "version": nannyml.__version__,
    }


def main(spec: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    warnings.simplefilter("ignore")
    reference = pd.read_parquet(spec["reference"])
    current = pd.read_parquet(spec["current"])
    tools = {"evidently": _evidently, "nannyml": _nannyml}
    return tools[spec["tool"]](reference, current, spec)


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
