"""Compile the run-search grammar (:mod:`loopml.storage.search`) to SQL queries.

Each filter clause on a param, tag or metric becomes an inner join on that key (so a run
without the key does not match). Runs without an order-by key (or whose metric is NaN) sort
last. When the first order-by key is a param, tag or metric the filter did not join, the page
is read in two parts so that the database can walk an index and stop at the page's end: first
the runs that have the key (an inner join, in order), then, only if the page is not full yet,
the runs that lack it. A later order-by key is a left outer join. Paging uses an offset
carried in an opaque token, over that same order.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    and_,
    exists,
    false,
    func,
    select,
)

from loopml.entities import PagedList, Run
from loopml.errors import InvalidArgumentError
from loopml.storage.search import Comparison, OrderBy, parse_filter, parse_order_by
from loopml.storage.sql.experiments import parse_experiment_id
from loopml.storage.sql.runs import RunsMixin
from loopml.storage.sql.schema import latest_metrics, params, run_tags, runs
from loopml.storage.sql.statistics import Statistics

__all__ = ["SearchMixin"]

MAX_RESULTS = 10_000

_Joined = dict[tuple[str, str], Any]
_TABLES: dict[str, Table] = {"param": params, "tag": run_tags, "metric": latest_metrics}
_ATTRIBUTE_COLUMNS = {
    "run_id": runs.c.run_id,
    "run_name": runs.c.run_name,
    "status": runs.c.status,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "user": runs.c.user_name,
    "experiment_id": runs.c.experiment_id,
    "parent_run_id": runs.c.parent_run_id,
    "git_commit": runs.c.git_commit,
}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "LIKE":
        return column.like(value)
    if op == "ILIKE":
        return column.ilike(value)
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return column.not_in(list(value))
    raise InvalidArgumentError(f"Unsupported operator {op!r}.", field="filter")  # pragma: no cover


def _attribute_condition(clause: Comparison) -> ColumnElement[bool]:
    column = _ATTRIBUTE_COLUMNS[clause.key]
    value = clause.value
    if clause.key == "experiment_id":
        values = value if isinstance(value, tuple) else (value,)
        try:
            converted = tuple(parse_experiment_id(v) for v in values)
        except InvalidArgumentError:
            return false()
        value = converted if isinstance(value, tuple) else converted[0]
    return _compare(column, clause.op, value)


def _metric_condition(table: Any, clause: Comparison) -> ColumnElement[bool]:
    condition = _compare(table.c.value, clause.op, float(clause.value))  # type: ignore[arg-type]
    if clause.op == "!=":
        return table.c.is_nan | condition
    return ~table.c.is_nan & condition


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if token is None or token == "":
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, AttributeError):
        offset = None
    if type(offset) is int and offset >= 0:
        return offset
    raise InvalidArgumentError(
        "The page_token is not valid; pass the next_page_token of a previous search unchanged.",
        field="page_token",
    )


def _apply_filter(query: Select[Any], clauses: list[Comparison]) -> tuple[Select[Any], _Joined]:
    """Add the filter's joins and conditions; also return the joined tables by (kind, key)."""
    joined: _Joined = {}
    for index, clause in enumerate(clauses):
        if clause.kind == "attribute":
            query = query.where(_attribute_condition(clause))
            continue
        table = _TABLES[clause.kind].alias(f"f{index}")
        if clause.kind == "metric":
            condition = _metric_condition(table, clause)
        else:
            condition = _compare(table.c.value, clause.op, clause.value)
        on = and_(table.c.run_id == runs.c.run_id, table.c.key == clause.key, condition)
        query = query.join(table, on)
        if not (clause.kind == "metric" and clause.op == "!="):  # those rows may hold NaN
            joined.setdefault((clause.kind, clause.key), table)
    return query, joined


#: attribute columns that may be NULL, so an order on them needs NULLS LAST to sort the same on
#: SQLite (NULL smallest) and PostgreSQL (NULL largest); on a NOT NULL column that clause only
#: keeps PostgreSQL from reading an index backwards
_NULLABLE = frozenset(name for name, column in _ATTRIBUTE_COLUMNS.items() if column.nullable)


def _direction(column: Any, ascending: bool, nullable: bool) -> Any:
    term = column.asc() if ascending else column.desc()
    return term.nulls_last() if nullable else term


def _key_on(table: Any, order: OrderBy) -> ColumnElement[bool]:
    """The join condition of an ordered-by key: its row of the run (a NaN metric has none)."""
    on = and_(table.c.run_id == runs.c.run_id, table.c.key == order.key)
    if order.kind == "metric":
        on = and_(on, ~table.c.is_nan)
    return on


def _apply_order(query: Select[Any], orders: list[OrderBy], joined: _Joined) -> Select[Any]:
    """Order by the clauses, then newest first. A key the filter already joined (so every
    result has it) is ordered through that join, which lets the database walk an index in
    order and stop at the page's end instead of sorting every match; any other key is a left
    outer join, whose missing values (NULL) sort last."""
    terms = []
    for index, order in enumerate(orders):
        if order.kind == "attribute":
            column: Any = _ATTRIBUTE_COLUMNS[order.key]
            nullable = order.key in _NULLABLE
        elif (order.kind, order.key) in joined:
            column = joined[(order.kind, order.key)].c.value
            nullable = False
        else:
            table = _TABLES[order.kind].alias(f"o{index}")
            query = query.outerjoin(table, _key_on(table, order))
            column = table.c.value
            nullable = True
        terms.append(_direction(column, order.ascending, nullable))
    terms += [runs.c.start_time.desc(), runs.c.run_id.asc()]
    return query.order_by(*terms)


def _ordered(
    query: Select[Any], orders: list[OrderBy], joined: _Joined
) -> tuple[Select[Any], Select[Any] | None]:
    """The filtered ``query`` in order, as one query, or as two whose results follow each other:
    the runs having the first order-by key, then those lacking it (see the module's doc)."""
    first = orders[0] if orders else None
    if first is None or first.kind == "attribute" or (first.kind, first.key) in joined:
        return _apply_order(query, orders, joined), None
    table = _TABLES[first.kind].alias("o0")
    having = query.join(table, _key_on(table, first))
    having = _apply_order(having, orders, {**joined, (first.kind, first.key): table})
    absent = _TABLES[first.kind].alias("x0")
    lacking = query.where(~exists().where(_key_on(absent, first)))
    lacking = _apply_order(lacking, orders[1:], joined)
    return having, lacking


def _page(
    conn: Connection, having: Select[Any], lacking: Select[Any] | None, offset: int, limit: int
) -> list[Row[Any]]:
    """``limit`` rows from ``offset`` of ``having``'s rows followed by ``lacking``'s."""
    rows = list(conn.execute(having.limit(limit).offset(offset)))
    if lacking is None or len(rows) == limit:
        return rows
    if rows or offset == 0:  # the first part ends on this page
        skip = 0
    else:  # the page lies past the first part: how far past?
        counted = select(func.count()).select_from(having.order_by(None).subquery())
        skip = max(0, offset - int(conn.execute(counted).scalar_one()))
    rows += conn.execute(lacking.limit(limit - len(rows)).offset(skip))
    return rows


class SearchMixin(RunsMixin):
    _statistics: Statistics

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Runs of the given experiments matching ``filter_string``, in ``order_by`` order."""
        if isinstance(experiment_ids, str | int):
            experiment_ids = [str(experiment_ids)]
        if not isinstance(experiment_ids, Iterable):
            raise InvalidArgumentError(
                "experiment_ids must be an experiment id or a list of them. "
                f"Got {type(experiment_ids).__name__} instead.",
                field="experiment_ids",
            )
        ids = [parse_experiment_id(e) for e in experiment_ids]
        if (
            isinstance(max_results, bool)
            or not isinstance(max_results, int)
            or not (1 <= max_results <= MAX_RESULTS)
        ):
            raise InvalidArgumentError(
                f"max_results must be an integer in [1, {MAX_RESULTS}]. Got {max_results!r}.",
                field="max_results",
            )
        clauses = parse_filter(filter_string)
        orders = parse_order_by(order_by)
        offset = _decode_token(page_token)
        if not ids:
            return PagedList([], None)
        self._statistics.refresh_if_due()  # plans depend on them (SQLite)
        query = select(runs).where(runs.c.experiment_id.in_(ids))
        query, joined = _apply_filter(query, clauses)
        having, lacking = _ordered(query, orders, joined)
        with self._db.read() as conn:
            rows = _page(conn, having, lacking, offset, max_results + 1)
            found = self._load_runs(conn, rows[:max_results])
        more = len(rows) > max_results
        return PagedList(found, _encode_token(offset + max_results) if more else None)
