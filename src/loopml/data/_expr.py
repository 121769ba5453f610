"""A tiny, safe expression language for row checks, evaluated column-wise with pyarrow.

Rules are read back from the metadata store, which others can write, so an expression is
never handed to ``eval``. It is parsed with :mod:`ast` and every node is checked against a
short whitelist; evaluation walks the checked tree and calls :mod:`pyarrow.compute` on whole
columns. The grammar:

* column names (``age``), or ``col("odd name")`` for names that are not identifiers;
* constants: numbers, strings, ``true``/``false`` (also ``True``/``False``);
* comparisons ``== != < <= > >=`` (chains such as ``0 <= x < 10`` too), and
  ``x in [..]`` / ``x not in [..]`` with a list of constants;
* ``and``, ``or``, ``not``; arithmetic ``+ - * / %`` and unary ``-``;
* the functions ``abs(x)``, ``isnull(x)`` and ``notnull(x)`` (NaN counts as null).

``null`` cannot be compared (a comparison with null is never true or false): write
``isnull(x)``. ``/`` is true division, also between integers. Null inputs propagate:
``null > 3`` is null, ``null or true`` is true, ``null and false`` is false.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.errors import InvalidArgumentError

__all__ = ["EvaluationError", "Expression", "evaluate", "parse_expression"]

MAX_LENGTH = 2000
MAX_DEPTH = 40

#: a whole column (``pa.ChunkedArray``) or one constant (``pa.Scalar``)
Value: TypeAlias = Any
ColumnSource = Callable[[str], pa.ChunkedArray]

_NAMED_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}
_COMPARE: dict[type[ast.cmpop], str] = {
    ast.Eq: "equal",
    ast.NotEq: "not_equal",
    ast.Lt: "less",
    ast.LtE: "less_equal",
    ast.Gt: "greater",
    ast.GtE: "greater_equal",
}
_ARITHMETIC: dict[type[ast.operator], str] = {
    ast.Add: "add",
    ast.Sub: "subtract",
    ast.Mult: "multiply",
    ast.Div: "divide",
    ast.Mod: "mod",
}
_FUNCTIONS = ("abs", "isnull", "notnull", "col")
_NODE_NAMES = {
    "Attribute": "attribute access",
    "Subscript": "indexing",
    "Lambda": "lambda",
    "JoinedStr": "f-string",
    "IfExp": "conditional expression",
    "NamedExpr": "assignment (:=)",
    "Starred": "unpacking",
}


class EvaluationError(Exception):
    """An expression could not be computed on this data (e.g. a string compared to a number)."""


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its tree and the columns it reads."""

    text: str
    tree: ast.expr = field(compare=False, repr=False)
    columns: tuple[str, ...] = field(compare=False)


def parse_expression(text: object, *, where: str) -> Expression:
    """Parse and check ``text``; refuse anything outside the grammar, naming ``where``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(
            f"{where} must be a non-empty expression string, got {text!r}", field=where
        )
    if len(text) > MAX_LENGTH:
        raise InvalidArgumentError(
            f"{where} is {len(text)} characters long; the limit is {MAX_LENGTH}", field=where
        )
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        detail = getattr(exc, "msg", None) or type(exc).__name__
        raise InvalidArgumentError(
            f"{where} is not a valid expression: {detail} in {text!r}", field=where
        ) from None
    columns: list[str] = []
    _Checker(where, text, columns).condition(tree, 0)
    return Expression(text=text, tree=tree, columns=tuple(dict.fromkeys(columns)))


class _Checker:
    """Walks a parsed tree and refuses every node outside the grammar."""

    def __init__(self, where: str, text: str, columns: list[str]) -> None:
        self.where = where
        self.text = text
        self.columns = columns

    def refuse(self, node: ast.AST, why: str) -> InvalidArgumentError:
        part = ast.get_source_segment(self.text.strip(), node) or type(node).__name__
        return InvalidArgumentError(
            f"{self.where}: {why}: {part!r} (in {self.text!r})", field=self.where
        )

    def condition(self, node: ast.expr, depth: int) -> None:
        """A node whose value must be true/false: no arithmetic or number at the top."""
        arithmetic = isinstance(node, ast.BinOp) or (
            isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not)
        )
        is_abs = isinstance(node, ast.Call) and _call_name(node) == "abs"
        plain = isinstance(node, ast.Constant) and not isinstance(node.value, bool)
        if arithmetic or is_abs or plain:
            raise self.refuse(node, "expected a condition (true or false), not a value")
        self.value(node, depth)

    def value(self, node: ast.expr, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.refuse(node, f"expression is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            self.constant(node)
        elif isinstance(node, ast.Name):
            self.name(node)
        elif isinstance(node, ast.BoolOp):
            for operand in node.values:
                self.condition(operand, depth + 1)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.condition(node.operand, depth + 1)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            self.value(node.operand, depth + 1)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _ARITHMETIC:
                raise self.refuse(node, "only the operators + - * / % are allowed")
            self.value(node.left, depth + 1)
            self.value(node.right, depth + 1)
        elif isinstance(node, ast.Compare):
            self.compare(node, depth)
        elif isinstance(node, ast.Call):
            self.call(node, depth)
        else:
            kind = type(node).__name__
            what = "comprehension" if kind.endswith("Comp") or kind == "GeneratorExp" else kind
            raise self.refuse(node, f"{_NODE_NAMES.get(kind, what)} is not allowed")

    def constant(self, node: ast.Constant) -> None:
        if node.value is None:
            raise self.refuse(node, "null cannot be compared or computed with; use isnull(x)")
        if not isinstance(node.value, bool | int | float | str):
            raise self.refuse(node, "only numbers, strings, true and false are allowed")

    def name(self, node: ast.Name) -> None:
        if node.id.startswith("__"):
            raise self.refuse(node, "names starting with '__' are not allowed")
        if node.id == "null":
            raise self.refuse(node, "null cannot be compared or computed with; use isnull(x)")
        if node.id not in _NAMED_CONSTANTS:
            self.columns.append(node.id)

    def compare(self, node: ast.Compare, depth: int) -> None:
        self.value(node.left, depth + 1)
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                self.constant_list(right)
            elif type(op) in _COMPARE:
                self.value(right, depth + 1)
            else:
                raise self.refuse(node, f"the comparison {type(op).__name__} is not allowed")

    def constant_list(self, node: ast.expr) -> None:
        if not isinstance(node, ast.List | ast.Tuple) or not node.elts:
            raise self.refuse(node, "'in' needs a non-empty list of constants such as [1, 2]")
        for item in node.elts:
            if not isinstance(item, ast.Constant) and not _is_bool_name(item):
                raise self.refuse(item, "'in' lists may hold only constants")
            if isinstance(item, ast.Constant):
                self.constant(item)

    def call(self, node: ast.Call, depth: int) -> None:
        name = _call_name(node)
        if name not in _FUNCTIONS:
            raise self.refuse(node, f"only the functions {', '.join(_FUNCTIONS)} may be called")
        if node.keywords or len(node.args) != 1:
            raise self.refuse(node, f"{name}() takes exactly one argument")
        (arg,) = node.args
        if name != "col":
            self.value(arg, depth + 1)
        elif isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value:
            self.columns.append(arg.value)
        else:
            raise self.refuse(node, 'col() takes one column name string, e.g. col("my col")')


def _call_name(node: ast.Call) -> str | None:
    return node.func.id if isinstance(node.func, ast.Name) else None


def _is_bool_name(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("true", "false")


def evaluate(expr: Expression, column: ColumnSource, num_rows: int) -> pa.ChunkedArray:
    """The failing-row mask of ``expr``: true where the expression is false (null passes).

    Raises :class:`EvaluationError` when the data does not fit the expression.
    """
    try:
        result = _Evaluator(column).value(expr.tree)
    except (pa.ArrowException, TypeError, ValueError, ArithmeticError) as exc:
        raise EvaluationError(str(exc).splitlines()[0]) from None
    if not pa.types.is_boolean(result.type) and not pa.types.is_null(result.type):
        raise EvaluationError(f"the expression gives {result.type} values, not true/false")
    if isinstance(result, pa.Scalar):
        result = pa.chunked_array([pa.repeat(result.cast(pa.bool_()), num_rows)])
    return pc.fill_null(pc.invert(result.cast(pa.bool_())), False)


class _Evaluator:
    """Computes a checked tree on whole columns; every step is one pyarrow.compute call."""

    def __init__(self, column: ColumnSource) -> None:
        self.column = column

    def value(self, node: ast.expr) -> Value:
        if isinstance(node, ast.Constant):
            return pa.scalar(node.value)
        if isinstance(node, ast.Name):
            if node.id in _NAMED_CONSTANTS:
                return pa.scalar(_NAMED_CONSTANTS[node.id])
            return self.column(node.id)
        if isinstance(node, ast.BoolOp):
            combine = pc.and_kleene if isinstance(node.op, ast.And) else pc.or_kleene
            values = [_logical(self.value(operand)) for operand in node.values]
            result = values[0]
            for other in values[1:]:
                result = combine(result, other)
            return result
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.arithmetic(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise EvaluationError(f"unsupported node {type(node).__name__}")  # checked at parse

    def unary(self, node: ast.UnaryOp) -> Value:
        operand = self.value(node.operand)
        if isinstance(node.op, ast.Not):
            return pc.invert(_logical(operand))
        return pc.negate(operand) if isinstance(node.op, ast.USub) else operand

    def arithmetic(self, node: ast.BinOp) -> Value:
        left, right = self.value(node.left), self.value(node.right)
        name = _ARITHMETIC[type(node.op)]
        if name == "mod":
            return _mod(left, right)
        if name == "divide":
            left, right = _as_float(left), _as_float(right)
        return pc.call_function(name, [left, right])

    def compare(self, node: ast.Compare) -> Value:
        left = self.value(node.left)
        result: Value | None = None
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                assert isinstance(right_node, ast.List | ast.Tuple)  # checked at parse
                right: Value = left
                step = _is_in(left, [self.value(item).as_py() for item in right_node.elts])
                step = pc.invert(step) if isinstance(op, ast.NotIn) else step
            else:
                right = self.value(right_node)
                step = pc.call_function(_COMPARE[type(op)], [left, right])
            result = step if result is None else pc.and_kleene(result, step)
            left = right
        assert result is not None  # a Compare node has at least one operator
        return result

    def call(self, node: ast.Call) -> Value:
        name = _call_name(node)
        arg = node.args[0]
        if name == "col":
            assert isinstance(arg, ast.Constant)  # checked at parse
            return self.column(str(arg.value))
        value = self.value(arg)
        if name == "abs":
            return pc.abs(value)
        missing = pc.is_null(value, nan_is_null=True)
        return missing if name == "isnull" else pc.invert(missing)


def _is_in(value: Value, options: list[Any]) -> Value:
    """Membership where a null input stays null (so it passes), not false."""
    found = pc.is_in(value, value_set=pa.array(options))
    return pc.if_else(pc.is_null(value), pa.scalar(None, pa.bool_()), found)


def _logical(value: Value) -> Value:
    """A column with no values at all (Arrow type null) taken as true/false values."""
    return value.cast(pa.bool_()) if pa.types.is_null(value.type) else value


def _as_float(value: Value) -> Value:
    if pa.types.is_integer(value.type) or pa.types.is_decimal(value.type):
        return value.cast(pa.float64())
    return value


def _mod(left: Value, right: Value) -> Value:
    """Python's ``%`` (the sign follows the divisor); a zero divisor gives null."""
    if not all(pa.types.is_integer(v.type) for v in (left, right)):
        left, right = _as_float(left), _as_float(right)
        return pc.subtract(left, pc.multiply(pc.floor(pc.divide(left, right)), right))
    a, a_null = _to_numpy(left)
    b, b_null = _to_numpy(right)
    zero = b == 0
    with np.errstate(all="ignore"):
        out = np.mod(a, np.where(zero, 1, b))
    mask = a_null | b_null | zero
    if out.ndim == 0:
        return pa.scalar(None if mask else int(out), pa.int64())
    return pa.chunked_array([pa.array(out, mask=np.broadcast_to(mask, out.shape))])


def _to_numpy(value: Value) -> tuple[np.ndarray, np.ndarray]:
    """Values as int64 (nulls as 0) and the null mask; a scalar becomes a 0-d array."""
    if isinstance(value, pa.Scalar):
        raw = value.as_py()
        return np.array(raw or 0, dtype=np.int64), np.array(raw is None)
    filled = pc.fill_null(value.cast(pa.int64()), 0)
    return filled.to_numpy(), pc.is_null(value).to_numpy()
