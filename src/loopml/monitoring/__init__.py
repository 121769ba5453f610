"""Monitoring: drift and data quality of production data against a reference.

The reference is a dataset version's :class:`~loopml.data.profile.Profile` (or any table,
profiled on the fly). Production data is summarised in :class:`WindowSketch` objects: counts on
the reference's buckets, so windows merge by adding counts and drift over any span needs no
rescan of raw rows. :func:`compare` turns a reference and a window (or two tables) into a
:class:`DriftResult`: per column the drift measures, a verdict under a :class:`DriftRule`
(effect size AND significance), a status with its reason, and data-quality findings.

    from loopml.monitoring import WindowSketch, compare
    from loopml.data.profile import profile_table

    reference = profile_table(training_table)
    window = WindowSketch(reference)
    window.update({"age": ages, "plan": plans})      # as requests are served
    result = compare(reference, window)
    result.flagged, result.status, result.to_dict()

    compare("train.parquet", "today.csv")             # two tables, no server

The measures themselves (PSI, Wasserstein, Jensen-Shannon, chi-square, Kolmogorov-Smirnov,
Cohen's h) are in :mod:`loopml.monitoring.drift`; definitions in ``docs/monitoring.md``.
"""

from loopml.monitoring.compare import STATUSES, ColumnDrift, DriftResult, compare
from loopml.monitoring.drift import DriftRule, TestResult
from loopml.monitoring.monitors import (
    CheckResult,
    check,
    create,
    delete,
    get,
    history,
    list_monitors,
)
from loopml.monitoring.quality import FINDING_KINDS, QualityFinding, QualityRule
from loopml.monitoring.report import report
from loopml.monitoring.sketches import (
    CategoricalWindow,
    ColumnWindow,
    NumericWindow,
    OtherWindow,
    WindowSketch,
)

__all__ = [
    "FINDING_KINDS",
    "STATUSES",
    "CategoricalWindow",
    "CheckResult",
    "ColumnDrift",
    "ColumnWindow",
    "DriftResult",
    "DriftRule",
    "NumericWindow",
    "OtherWindow",
    "QualityFinding",
    "QualityRule",
    "TestResult",
    "WindowSketch",
    "check",
    "compare",
    "create",
    "delete",
    "get",
    "history",
    "list_monitors",
    "report",
]
