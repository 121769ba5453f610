"""A monitor's report: one self-contained HTML file (inline SVG, inline CSS, no script, no
network) and the same content as a dict.

Panels: the latest checked window's verdict and alerts; per feature, the reference's and the
window's distributions side by side (numeric: the reference's 20 quantile buckets;
categorical: the shares of the most frequent categories) with the drift measures; drift over
time (the effect of every feature and the number of drifted features per stored window);
data quality findings; performance per window. Everything is computed from aggregates (bucket
counts, stored window summaries), never by embedding raw rows, so the file stays small.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.errors import InvalidArgumentError

__all__ = ["build_report", "report"]

_W, _H = 420, 150
#: the newest windows, late windows and alert events a report shows
_MAX_WINDOWS, _MAX_LATE, _MAX_EVENTS = 2_000, 50, 200
_REF, _CUR = "#4c78a8", "#f58518"


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _numbers(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The finite numbers of ``column`` (anything else, nulls and text included, left out)."""
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        out = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    else:  # a window whose values are not numbers: keep the ones that are
        values = column.to_pylist()
        out = np.array(
            [
                float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
                for v in values
            ],
            dtype=float,
        )
    return out[np.isfinite(out)]


def _category_counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """How often each value of ``column`` occurs, as text (nulls left out)."""
    try:
        text = pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        text = pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
    counts = pc.value_counts(text.drop_null())
    return {
        str(value): int(count)
        for value, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
    }


def histograms(reference: pa.Table, current: pa.Table, name: str) -> dict[str, Any]:
    """The shares of column ``name`` in ``reference`` and ``current`` on the reference's
    buckets (numeric: 20 quantile buckets; categorical: the 12 most frequent categories), as
    a check stores them in its window's summary for the report."""
    ref_col, cur_col = reference[name], current[name]
    numeric = pa.types.is_integer(ref_col.type) or pa.types.is_floating(ref_col.type)
    if numeric:
        ref, cur = _numbers(ref_col), _numbers(cur_col)
        if not len(ref):
            return {"kind": "numeric", "labels": [], "reference": [], "current": []}
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, 21)))
        if len(edges) < 2:
            edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
        inner = edges[1:-1]
        ref_counts = np.bincount(
            np.searchsorted(inner, ref, side="right"), minlength=len(edges) - 1
        )
        cur_counts = np.bincount(
            np.searchsorted(inner, cur, side="right"), minlength=len(edges) - 1
        )
        labels = [f"{edges[i]:.3g}" for i in range(len(edges) - 1)]
    else:
        ref_found, cur_found = _category_counts(ref_col), _category_counts(cur_col)
        top = sorted(ref_found, key=lambda n: (-ref_found[n], n))[:12]
        ref_counts = np.array([ref_found[n] for n in top])
        cur_counts = np.array([cur_found.get(n, 0) for n in top])
        labels = top
    ref_share = ref_counts / max(1, ref_counts.sum())
    cur_share = cur_counts / max(1, cur_counts.sum())
    return {
        "kind": "numeric" if numeric else "categorical",
        "labels": labels,
        "reference": [round(float(v), 5) for v in ref_share],
        "current": [round(float(v), 5) for v in cur_share],
    }


def _bars_svg(hist: Mapping[str, Any]) -> str:
    ref, cur = hist["reference"], hist["current"]
    n = len(ref)
    if not n:
        return "<p>no values</p>"
    top = max([*ref, *cur, 1e-9])
    slot = _W / n
    parts = [f'<svg width="{_W}" height="{_H + 20}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for i in range(n):
        for j, (values, color) in enumerate(((ref, _REF), (cur, _CUR))):
            height = values[i] / top * _H
            x = i * slot + j * slot / 2
            parts.append(
                f'<rect x="{x:.1f}" y="{_H - height:.1f}" width="{slot / 2 - 1:.1f}" '
                f'height="{height:.1f}" fill="{color}"><title>{_esc(hist["labels"][i])}: '
                f"{values[i]:.1%}</title></rect>"
            )
    parts.append(f'<text x="0" y="{_H + 14}" font-size="10">{_esc(hist["labels"][0])}</text>')
    parts.append(
        f'<text x="{_W}" y="{_H + 14}" font-size="10" text-anchor="end">'
        f"{_esc(hist['labels'][-1])}</text></svg>"
    )
    return "".join(parts)


def _lines_svg(series: Mapping[str, Sequence[float | None]], times: Sequence[int]) -> str:
    if not times:
        return "<p>no stored windows yet</p>"
    values = [v for s in series.values() for v in s if v is not None and math.isfinite(v)]
    top = max([*values, 1e-9])
    n = len(times)
    step = _W / max(1, n - 1)
    colors = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6"]
    parts = [f'<svg width="{_W}" height="{_H + 20}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for k, (name, points) in enumerate(series.items()):
        coords = [
            f"{i * step:.1f},{_H - (v / top * _H):.1f}"
            for i, v in enumerate(points)
            if v is not None and math.isfinite(v)
        ]
        if coords:
            color = colors[k % len(colors)]
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                f'points="{" ".join(coords)}"><title>{_esc(name)}</title></polyline>'
            )
    first = time.strftime("%Y-%m-%d %H:%M", time.gmtime(times[0] / 1000))
    last = time.strftime("%Y-%m-%d %H:%M", time.gmtime(times[-1] / 1000))
    parts.append(f'<text x="0" y="{_H + 14}" font-size="10">{first}</text>')
    parts.append(
        f'<text x="{_W}" y="{_H + 14}" font-size="10" text-anchor="end">{last} UTC</text></svg>'
    )
    return "".join(parts)


def build_report(name: str, *, tracking_uri: Any = None) -> dict[str, Any]:
    """The report of monitor ``name`` as a dict (what :func:`report` renders)."""
    from loopml.storage.uris import open_store

    store: Any = open_store(tracking_uri)
    monitor = store.get_monitor(name)
    spec = monitor.spec
    results = list(store.list_monitor_results(name, late=False, limit=_MAX_WINDOWS, newest=True))
    late = store.list_monitor_results(name, late=True, limit=_MAX_LATE, newest=True)
    latest = results[-1].summary if results else None
    features: list[dict[str, Any]] = []
    if latest is not None and latest.get("drift"):
        stored = latest.get("histograms") or {}
        for column in latest["drift"].get("columns", []):
            col = column.get("column")
            if col not in stored:
                continue
            features.append(
                {
                    "column": col,
                    "role": column.get("role"),
                    "status": column.get("status"),
                    "reason": column.get("reason"),
                    "measures": column.get("measures", {}),
                    "histogram": stored[col],
                }
            )
    over_time: dict[str, list[float | None]] = {}
    drifted_counts: list[int] = []
    performance: dict[str, list[float | None]] = {}
    times = [r.window_end for r in results]
    for result in results:
        summary = result.summary
        columns = (summary.get("drift") or {}).get("columns", [])
        effects = {c.get("column"): c.get("effect") for c in columns}
        for col in {c.get("column") for c in columns} | set(over_time):
            over_time.setdefault(col, [None] * (len(drifted_counts)))
            over_time[col].append(effects.get(col))
        drifted_counts.append(len(summary.get("drifted_features", [])))
        for metric, value in (summary.get("performance") or {}).items():
            performance.setdefault(metric, [None] * (len(drifted_counts) - 1)).append(value)
        for metric in performance:
            if len(performance[metric]) < len(drifted_counts):
                performance[metric].append(None)
    events = [
        {"time": e.time, "kind": e.kind, "reason": e.payload.get("reason", e.payload.get("key"))}
        for e in store.list_monitor_events(
            name, kinds=["alert.opened", "alert.resolved"], limit=_MAX_EVENTS, newest=True
        )
    ]
    return {
        "monitor": name,
        "spec": spec,
        "generated": int(time.time() * 1000),
        "latest": latest,
        "features": features,
        "drift_over_time": {"times": times, "effects": over_time, "drifted": drifted_counts},
        "performance_over_time": {"times": times, "metrics": performance},
        "alert_events": events[-50:],
        "late_windows": [
            {
                "window_start": r.window_start,
                "window_end": r.window_end,
                "status": r.status,
                "rows": r.summary.get("rows", 0),
                "drifted_features": r.summary.get("drifted_features", []),
            }
            for r in late
        ],
    }


def _render(content: Mapping[str, Any]) -> str:
    latest = content["latest"] or {}
    spec = content["spec"]
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>loopml monitor {_esc(content['monitor'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;"
        "text-align:left;font-size:13px}.drift{color:#c0392b;font-weight:600}"
        ".ok{color:#27ae60}.card{display:inline-block;vertical-align:top;margin:8px;"
        "padding:8px;border:1px solid #eee;border-radius:6px}</style></head><body>",
        f"<h1>Monitor {_esc(content['monitor'])}</h1>",
        f"<p>model <b>{_esc(spec.get('model'))}</b>, reference <b>{_esc(spec.get('reference'))}"
        f"</b>, window {_esc(spec.get('window'))}</p>",
    ]
    if not latest:
        out.append("<p>No window has been checked yet (loopml monitor check).</p>")
    else:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(latest["window_start"] / 1000))
        end = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(latest["window_end"] / 1000))
        status = latest.get("status", "")
        css = "ok" if status == "ok" else "drift"
        out.append(
            f"<h2>Latest window</h2><p>{start} to {end} UTC: <span class='{css}'>"
            f"{_esc(status)}</span>, {latest.get('rows', 0)} predictions, "
            f"drifted features: {_esc(', '.join(latest.get('drifted_features', [])) or 'none')}"
            "</p>"
        )
        alerts = latest.get("alerts") or []
        if alerts:
            out.append("<h3>Alerts</h3><ul>")
            out.extend(f"<li class='drift'>{_esc(a.get('reason'))}</li>" for a in alerts)
            out.append("</ul>")
    if content["features"]:
        out.append(
            f"<h2>Reference vs current</h2><p><span style='color:{_REF}'>&#9632; reference</span>"
            f" <span style='color:{_CUR}'>&#9632; current window</span></p>"
        )
        for feature in content["features"]:
            measures = feature["measures"]
            shown = ", ".join(
                f"{k} {v:.3g}" for k, v in measures.items() if isinstance(v, int | float)
            )
            css = "drift" if feature["status"] == "drift" else "ok"
            out.append(
                f"<div class='card'><b>{_esc(feature['column'])}</b> "
                f"<span class='{css}'>{_esc(feature['status'])}</span>"
                f"{' (prediction)' if feature['role'] == 'prediction' else ''}<br>"
                f"{_bars_svg(feature['histogram'])}<br><small>{_esc(shown)}</small></div>"
            )
    over = content["drift_over_time"]
    out.append("<h2>Drift over time</h2>")
    out.append(
        f"<div class='card'>effect per feature{_lines_svg(over['effects'], over['times'])}</div>"
    )
    out.append(
        "<div class='card'>drifted features"
        f"{_lines_svg({'drifted': [float(v) for v in over['drifted']]}, over['times'])}</div>"
    )
    quality = ((latest.get("drift") or {}).get("quality")) or []
    out.append("<h2>Data quality</h2>")
    if quality:
        out.append("<table><tr><th>column</th><th>kind</th><th>finding</th></tr>")
        out.extend(
            f"<tr><td>{_esc(q.get('column'))}</td><td>{_esc(q.get('kind'))}</td>"
            f"<td>{_esc(q.get('message'))}</td></tr>"
            for q in quality
        )
        out.append("</table>")
    else:
        out.append("<p>No findings in the latest window.</p>")
    perf = content["performance_over_time"]
    out.append("<h2>Performance</h2>")
    if any(v is not None for series in perf["metrics"].values() for v in series):
        out.append(f"<div class='card'>{_lines_svg(perf['metrics'], perf['times'])}</div>")
        last = latest.get("performance") or {}
        out.append(
            "<p>"
            + _esc(", ".join(f"{k} {v:.4f}" for k, v in last.items() if v is not None))
            + f" ({latest.get('labelled_rows', 0)} labelled predictions)</p>"
        )
    else:
        out.append("<p>No labels yet (POST /feedback/MODEL on the model server).</p>")
    events = content["alert_events"]
    if events:
        out.append("<h2>Alert events</h2><table>")
        out.extend(
            f"<tr><td>{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(e['time'] / 1000))}</td>"
            f"<td>{_esc(e['kind'])}</td><td>{_esc(e['reason'])}</td></tr>"
            for e in events
        )
        out.append("</table>")
    late = content.get("late_windows") or []
    if late:
        out.append(
            "<h2>Late windows</h2><p>Predictions that arrived after their window was "
            "checked, by when they arrived.</p><table>"
        )
        out.extend(
            f"<tr><td>{time.strftime('%Y-%m-%d %H:%M', time.gmtime(w['window_start'] / 1000))}"
            f" to {time.strftime('%Y-%m-%d %H:%M', time.gmtime(w['window_end'] / 1000))}</td>"
            f"<td>{_esc(w['status'])}</td><td>{int(w['rows'])} predictions</td>"
            f"<td>{_esc(', '.join(w['drifted_features']) or '-')}</td></tr>"
            for w in late
        )
        out.append("</table>")
    out.append("</body></html>")
    return "".join(out)


def report(name: str, path: str | Path, *, tracking_uri: Any = None) -> dict[str, Any]:
    """Write the HTML report of monitor ``name`` to ``path`` (atomically) and return its
    content as a dict."""
    if not isinstance(path, str | Path) or not str(path):
        raise InvalidArgumentError("path must name the HTML file to write.", field="path")
    content = build_report(name, tracking_uri=tracking_uri)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(_render(content), encoding="utf-8")
    tmp.replace(target)
    return content
