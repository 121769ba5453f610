"""The figures of :func:`loopml.models.evaluate`: confusion matrix, calibration, residuals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.models._evaluation_data import _Data
    from loopml.models.evaluation import _Scores

_MAX_PLOT_POINTS = 10_000
_MAX_ANNOTATED_LABELS = 30
_MAX_PLOTTED_LABELS = 50


def _figures(task: str, data: _Data, scores: _Scores) -> list[tuple[str, Any]]:
    """``(file name, Figure)`` pairs; raises ImportError without matplotlib."""
    from matplotlib.figure import Figure

    if task == "regression":
        return _regression_figures(Figure, data.targets.astype(float), scores.predictions)
    figures = []
    if len(scores.labels or ()) <= _MAX_PLOTTED_LABELS:
        figures.append(("confusion_matrix.png", _confusion_figure(Figure, scores)))
    else:
        scores.notes.append(
            f"confusion_matrix.png skipped: more than {_MAX_PLOTTED_LABELS} labels "
            "(confusion_matrix.json has them all)"
        )
    if scores.positive_scores is not None and len(scores.labels or ()) == 2:
        figures.append(("calibration.png", _calibration_figure(Figure, data.targets, scores)))
    return figures


def _confusion_figure(figure_type: Any, scores: _Scores) -> Any:
    import numpy as np

    labels = [str(label) for label in scores.labels or ()]
    matrix = np.asarray(scores.matrix)
    size = min(max(4.0, 0.5 * len(labels) + 2.0), 12.0)
    figure = figure_type(figsize=(size, size), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = list(range(len(labels)))
    axes.set_xticks(ticks, labels=labels, rotation=45 if len(labels) > 5 else 0)
    axes.set_yticks(ticks, labels=labels)
    axes.set(xlabel="predicted label", ylabel="true label", title="confusion matrix")
    if len(labels) <= _MAX_ANNOTATED_LABELS:
        middle = matrix.max() / 2 if matrix.size else 0
        for (row, column), count in np.ndenumerate(matrix):
            color = "white" if count > middle else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=color)
    return figure


def _calibration_figure(figure_type: Any, y: Any, scores: _Scores) -> Any:
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y == scores.positive, scores.positive_scores, n_bins=10)
    figure = figure_type(figsize=(4.5, 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.plot(predicted, observed, marker="o", label="model")
    axes.set(
        xlabel=f"mean predicted probability of {scores.positive!r}",
        ylabel="fraction of positives",
        title="calibration (10 bins)",
        xlim=(-0.02, 1.02),
        ylim=(-0.02, 1.02),
    )
    axes.legend(loc="upper left")
    return figure


def _sample(*arrays: Any) -> list[Any]:
    """At most :data:`_MAX_PLOT_POINTS` evenly spaced rows of each array (deterministic)."""
    import numpy as np

    rows = len(arrays[0])
    if rows <= _MAX_PLOT_POINTS:
        return list(arrays)
    index = np.linspace(0, rows - 1, _MAX_PLOT_POINTS).astype(int)
    return [array[index] for array in arrays]


def _regression_figures(figure_type: Any, y: Any, predictions: Any) -> list[tuple[str, Any]]:
    y, predictions = _sample(y, predictions)
    residuals = figure_type(figsize=(5, 4), dpi=100, layout="constrained")
    axes = residuals.add_subplot()
    axes.scatter(predictions, y - predictions, s=8, alpha=0.6)
    axes.axhline(0, linestyle="--", color="grey")
    axes.set(xlabel="predicted", ylabel="residual (actual - predicted)", title="residuals")
    scatter = figure_type(figsize=(4.5, 4.5), dpi=100, layout="constrained")
    axes = scatter.add_subplot()
    axes.scatter(y, predictions, s=8, alpha=0.6)
    low, high = float(min(y.min(), predictions.min())), float(max(y.max(), predictions.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="grey", label="predicted = actual")
    axes.set(xlabel="actual", ylabel="predicted", title="predicted vs actual")
    axes.legend(loc="upper left")
    return [("residuals.png", residuals), ("predicted_vs_actual.png", scatter)]
