"""Data-quality checks of a window against its reference profile.

Four kinds of :class:`QualityFinding`, each per column:

* ``missing_rate``: the share of missing values (nulls, NaN, or the column absent) changed by
  at least ``QualityRule.missing_rate_change`` (1 point by default) and a two-proportion z-test
  finds the change significant;
* ``out_of_range``: numeric values outside the reference's [min, max]. Even without drift a
  new sample exceeds the reference's extremes now and then (with a probability of
  2 / (n + 1) per value for n reference values of a continuous column), so a finding needs at
  least ``QualityRule.out_of_range`` of the values (0.1% by default) outside and more of them
  than that chance explains (a Poisson test);
* ``unseen_categories``: values outside the reference's categories, when the reference lists
  all of its categories (a reference with more than 100 distinct values keeps only its top 100,
  so "unseen" cannot be told from "rare" there). New values appear by chance at about the
  Good-Turing rate (categories seen once in the reference, plus one, over its values plus one);
  a finding needs more than that chance explains;
* ``type_mismatch``: values of the wrong type (text in a numeric column, numbers in a text
  column); any such value is a finding.

The significance tests share one family-wise level, ``QualityRule.alpha`` (0.05) split over the
columns checked (Bonferroni), as drift does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loopml.data.profile import CategoricalProfile, ColumnProfile, NumericProfile
from loopml.errors import InvalidArgumentError
from loopml.monitoring.drift import normal_sf, poisson_sf
from loopml.monitoring.sketches import CategoricalWindow, ColumnWindow, NumericWindow

__all__ = ["FINDING_KINDS", "QualityFinding", "QualityRule", "column_quality"]

FINDING_KINDS = ("missing_rate", "out_of_range", "unseen_categories", "type_mismatch")
CORRECTIONS = ("bonferroni", "none")
SHOWN_EXAMPLES = 5


def _share(value: Any, name: str, *, upper: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidArgumentError(
            f"The {name!r} setting must be a number in [0, {upper:g}]. Got {value!r}.", field=name
        )
    if not 0 <= value <= upper:
        raise InvalidArgumentError(
            f"The {name!r} setting must be a number in [0, {upper:g}]. Got {value!r}.", field=name
        )
    return float(value)


@dataclass(frozen=True)
class QualityRule:
    """When a data-quality check reports a finding (see the module docstring)."""

    missing_rate_change: float = 0.01
    """Smallest change in the share of missing values (absolute: 0.01 is one point)."""
    out_of_range: float = 0.001
    """Smallest share of numeric values outside the reference's [min, max]."""
    unseen: float = 0.0
    """Smallest share of values outside the reference's categories."""
    type_mismatch: float = 0.0
    """Smallest share of values of the wrong type (0: any)."""
    alpha: float = 0.05
    """Family-wise significance level of the tests."""
    correction: str = "bonferroni"
    """Either "bonferroni" (alpha split over the columns checked) or "none"."""

    def __post_init__(self) -> None:
        for name in ("missing_rate_change", "out_of_range", "unseen", "type_mismatch"):
            _share(getattr(self, name), name)
        alpha = _share(self.alpha, "alpha")
        if alpha <= 0:
            raise InvalidArgumentError(
                f"The 'alpha' setting must be in (0, 1]. Got {self.alpha!r}.", field="alpha"
            )
        if self.correction not in CORRECTIONS:
            raise InvalidArgumentError(
                f"The 'correction' setting must be one of {', '.join(CORRECTIONS)}. Got "
                f"{self.correction!r}.",
                field="correction",
            )

    def level(self, columns: int) -> float:
        """The significance level each column's tests use."""
        if self.correction == "none" or columns <= 1:
            return self.alpha
        return self.alpha / columns

    def to_dict(self) -> dict[str, Any]:
        return {
            "missing_rate_change": self.missing_rate_change,
            "out_of_range": self.out_of_range,
            "unseen": self.unseen,
            "type_mismatch": self.type_mismatch,
            "alpha": self.alpha,
            "correction": self.correction,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityRule:
        known = cls().to_dict()
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise InvalidArgumentError(
                f"Unknown quality rule settings {unknown}; expected some of {sorted(known)}.",
                field="quality",
            )
        return cls(**dict(d))


@dataclass(frozen=True)
class QualityFinding:
    """One data-quality problem of one column in a window."""

    column: str
    kind: str
    """One of :data:`FINDING_KINDS`."""
    message: str
    count: int
    """Values (or rows, for ``missing_rate``) concerned in the window."""
    reference: float | None
    """The reference's rate (missing share; 0 for the other kinds)."""
    current: float | None
    """The window's rate: missing share, or the share of values out of range, unseen, or of
    the wrong type."""
    pvalue: float | None = None
    examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "message": self.message,
            "count": self.count,
            "reference": self.reference,
            "current": self.current,
            "pvalue": self.pvalue,
            "examples": list(self.examples),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityFinding:
        return cls(
            column=str(d["column"]),
            kind=str(d["kind"]),
            message=str(d["message"]),
            count=int(d["count"]),
            reference=None if d.get("reference") is None else float(d["reference"]),
            current=None if d.get("current") is None else float(d["current"]),
            pvalue=None if d.get("pvalue") is None else float(d["pvalue"]),
            examples=tuple(str(e) for e in d.get("examples", ())),
        )


def _pct(value: float) -> str:
    return f"{100 * value:.3g}%"


def _missing_rate(
    name: str, reference: ColumnProfile, window: ColumnWindow, rule: QualityRule, level: float
) -> QualityFinding | None:
    n1 = reference.count + reference.missing
    n2 = window.rows
    if not n1 or not n2:
        return None
    p1, p2 = reference.missing / n1, window.missing / n2
    change = p2 - p1
    if abs(change) < rule.missing_rate_change or change == 0:
        return None
    pooled = (reference.missing + window.missing) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    pvalue = 0.0 if spread == 0 else min(1.0, 2 * normal_sf(abs(change) / spread))
    if pvalue >= level:
        return None
    absent = window.present == 0 and window.missing > 0
    message = (
        "the column is absent from the current data"
        if absent
        else f"missing values {_pct(p1)} -> {_pct(p2)} ({100 * change:+.3g} points)"
    )
    return QualityFinding(name, "missing_rate", message, window.missing, p1, p2, pvalue)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _out_of_range(
    name: str, reference: NumericProfile, window: NumericWindow, rule: QualityRule, level: float
) -> QualityFinding | None:
    outside = window.below + window.above
    if not outside or not window.count or not reference.count:
        return None
    share = outside / window.count
    if share < rule.out_of_range:
        return None
    expected = window.count * 2.0 / (reference.count + 1)
    pvalue = poisson_sf(outside, expected)
    if pvalue >= level:
        return None
    examples = []
    if window.below:
        examples.append(
            f"{window.below} below {_number(reference.min)} (min {_number(window.min)})"
        )
    if window.above:
        examples.append(
            f"{window.above} above {_number(reference.max)} (max {_number(window.max)})"
        )
    message = (
        f"{outside:,} values ({_pct(share)}) outside the reference's range "
        f"[{_number(reference.min)}, {_number(reference.max)}]"
    )
    return QualityFinding(
        name, "out_of_range", message, outside, 0.0, share, pvalue, tuple(examples)
    )


def _unseen(
    name: str,
    reference: CategoricalProfile,
    window: CategoricalWindow,
    rule: QualityRule,
    level: float,
) -> QualityFinding | None:
    if reference.other or not window.other or not window.count or not reference.count:
        return None
    share = window.other / window.count
    if share < rule.unseen:
        return None
    singletons = sum(1 for n in reference.counts.values() if n == 1)
    expected = window.count * (singletons + 1.0) / (reference.count + 1.0)
    pvalue = poisson_sf(window.other, expected)
    if pvalue >= level:
        return None
    shown = list(window.unseen.items())[:SHOWN_EXAMPLES]
    examples = tuple(f"{value!r} ({n:,})" for value, n in shown)
    message = (
        f"{window.other:,} values ({_pct(share)}) outside the reference's "
        f"{len(reference.counts)} categories, e.g. {', '.join(examples)}"
    )
    return QualityFinding(
        name, "unseen_categories", message, window.other, 0.0, share, pvalue, examples
    )


def _type_mismatch(
    name: str, reference: ColumnProfile, window: ColumnWindow, rule: QualityRule
) -> QualityFinding | None:
    if not window.mismatched or not window.rows:
        return None
    share = window.mismatched / window.rows
    if share < rule.type_mismatch:
        return None
    expected = "numbers" if isinstance(reference, NumericProfile) else "text"
    message = f"{window.mismatched:,} values ({_pct(share)}) are not {expected}"
    return QualityFinding(name, "type_mismatch", message, window.mismatched, 0.0, share)


def column_quality(
    name: str,
    reference: ColumnProfile,
    window: ColumnWindow,
    *,
    rule: QualityRule | None = None,
    level: float | None = None,
) -> list[QualityFinding]:
    """The findings for one column; ``level`` is its significance level (default:
    ``rule.alpha``, no correction)."""
    rule = rule or QualityRule()
    level = rule.alpha if level is None else level
    found = [_missing_rate(name, reference, window, rule, level)]
    if isinstance(reference, NumericProfile) and isinstance(window, NumericWindow):
        found.append(_out_of_range(name, reference, window, rule, level))
    if isinstance(reference, CategoricalProfile) and isinstance(window, CategoricalWindow):
        found.append(_unseen(name, reference, window, rule, level))
    found.append(_type_mismatch(name, reference, window, rule))
    return [f for f in found if f is not None]
