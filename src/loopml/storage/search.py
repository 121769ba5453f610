"""Parse run-search filters and order-by clauses into a small, backend-neutral AST.

Filter grammar (keywords are case-insensitive)::

    filter     := clause ( AND clause )*
    clause     := identifier operator value
                | identifier ( IN | NOT IN ) "(" value ( "," value )* ")"
    identifier := prefix "." key | attribute
    prefix     := params | param | metrics | metric | tags | tag
                | attributes | attribute | attr | run
    key        := bare-key | "`" text "`" | '"' text '"'
    bare-key   := one or more letters, digits, "_", "-", ".", "/", ":"
    operator   := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | LIKE | ILIKE
    value      := number | "'" text "'" | '"' text '"'
    number     := [+-] ( digits [ "." digits ] | "." digits ) [ ( "e" | "E" ) [+-] digits ]

Rules:

* Clauses can only be joined with ``AND``; ``OR`` and parentheses are not supported (run two
  searches and combine the results instead).
* Everything after the first dot of a bare identifier is the key: ``metrics.train.loss`` has the
  key ``train.loss``. Quote keys that hold other characters (spaces, quotes, operators) with
  backticks or double quotes, as in the examples below.
* Inside any quoted text a backslash escapes a quote character or a backslash (``\\'``,
  ``\\"``, ``\\```, ``\\\\``); a backslash before any other character is kept as it is, so
  ``'a\\%'`` reaches a ``LIKE`` pattern unchanged.
* An identifier without a prefix must be a run attribute: ``run_id``, ``run_name`` (alias
  ``name``), ``status``, ``start_time``, ``end_time``, ``user`` (alias ``user_id``),
  ``experiment_id``, ``parent_run_id``, ``git_commit``. Attribute names are case-insensitive.
* Metrics, ``start_time`` and ``end_time`` (milliseconds since the epoch) are numbers: they
  take ``= != < <= > >=`` and a number. NaN and infinity are not accepted.
* Params, tags and the other attributes are strings: they take ``= != LIKE ILIKE IN NOT IN``.
  A number given for a string is kept exactly as written: ``params.lr = 0.10`` compares with
  the text ``"0.10"``.
* ``status`` must be RUNNING, FINISHED, FAILED or KILLED (any case) for ``= != IN NOT IN``.
* ``==`` means ``=`` and ``<>`` means ``!=``.

An order-by clause is ``identifier [ ASC | DESC ]`` with the same identifier rules; the default
is ascending. Examples::

    metrics.accuracy > 0.9 and params.model = 'rf'
    params.`learning rate` = 0.01 and tags."team name" IN ('vision', 'nlp')
    status = 'finished' and start_time >= 1700000000000 and run_name LIKE 'baseline-%'
    order by: ["metrics.accuracy DESC", "start_time"]
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, NoReturn

from loopml.entities.run import RunStatus
from loopml.errors import FilterSyntaxError, InvalidArgumentError

__all__ = ["ATTRIBUTES", "Comparison", "Kind", "OrderBy", "parse_filter", "parse_order_by"]

Kind = Literal["param", "metric", "tag", "attribute"]
Scalar = str | float | int

ATTRIBUTES: dict[str, Literal["string", "number"]] = {
    "run_id": "string",
    "run_name": "string",
    "status": "string",
    "start_time": "number",
    "end_time": "number",
    "user": "string",
    "experiment_id": "string",
    "parent_run_id": "string",
    "git_commit": "string",
}

_ATTRIBUTE_ALIASES = {"name": "run_name", "user_id": "user"}
_PREFIXES: dict[str, Kind] = {
    "params": "param",
    "param": "param",
    "metrics": "metric",
    "metric": "metric",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_OPERATORS = "=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN"
_NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
_SYMBOL_OPS = {op: op for op in _NUMBER_OPS} | {"==": "=", "<>": "!="}
_STATUSES = tuple(status.value for status in RunStatus)
_NO_OR = (
    "OR and parentheses are not supported in filters: clauses can only be joined with AND; "
    "run two searches and combine the results instead"
)

_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WORD_RE = re.compile(r"[\w\-./:]+")
_SYMBOL_RE = re.compile(r"==|!=|<>|<=|>=|[=<>(),]")
_QUOTES = "'\"`"
_ESCAPABLE = _QUOTES + "\\"


@dataclass(frozen=True, slots=True)
class Comparison:
    """One ``identifier operator value`` clause of a filter."""

    kind: Kind
    key: str
    op: str
    value: Scalar | tuple[Scalar, ...]
    position: int


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One order-by clause: sort by ``kind``/``key``, ascending unless told otherwise."""

    kind: Kind
    key: str
    ascending: bool = True


class _Token(NamedTuple):
    """A lexical token. ``type`` is word, number, quoted, symbol or end."""

    type: str
    text: str  # the raw source text
    value: str  # unescaped content for quoted tokens, else the raw text
    pos: int


class _Parser:
    """A recursive-descent parser over text that is tokenized lazily, left to right."""

    def __init__(self, text: str, context: str = "", end_name: str = "end of filter") -> None:
        self.text = text
        self.context = context
        self.end_name = end_name
        self.pos = 0
        self._next: _Token | None = None

    def fail(self, message: str, position: int) -> NoReturn:
        """Raise a :class:`FilterSyntaxError` pointing at ``position``."""
        raise FilterSyntaxError(self.context + message, text=self.text, position=position)

    def describe(self, token: _Token) -> str:
        """How a token is named in 'but found ...' messages."""
        if token.type == "end":
            return self.end_name
        if token.type == "quoted" and token.text[0] != "`":
            return f"the string {token.text}"
        return repr(token.text)

    def expected(self, what: str, token: _Token, hint: str = "") -> NoReturn:
        """Raise 'expected <what> but found <token>'."""
        self.fail(f"expected {what} but found {self.describe(token)}{hint}", token.pos)

    def peek(self) -> _Token:
        """The next token, without consuming it."""
        if self._next is None:
            self._next = self._scan()
        return self._next

    def take(self) -> _Token:
        """Consume and return the next token."""
        token = self.peek()
        self._next = None
        self.pos = token.pos + len(token.text)
        return token

    def _scan(self) -> _Token:
        text, start = self.text, self.pos
        while start < len(text) and text[start].isspace():
            start += 1
        if start == len(text):
            return _Token("end", "", "", start)
        char = text[start]
        if char in _QUOTES:
            return self._scan_quoted(start)
        number = _NUMBER_RE.match(text, start)
        if number and not _WORD_RE.match(text, number.end()):
            return _Token("number", number.group(), number.group(), start)
        for kind, pattern in (("word", _WORD_RE), ("symbol", _SYMBOL_RE)):
            match = pattern.match(text, start)
            if match:
                return _Token(kind, match.group(), match.group(), start)
        if char in "&|":
            self.fail(_NO_OR, start)
        self.fail(f"unexpected character {char!r}", start)

    def _scan_quoted(self, start: int) -> _Token:
        text, quote = self.text, self.text[start]
        chars: list[str] = []
        i = start + 1
        while i < len(text):
            char = text[i]
            if char == quote:
                return _Token("quoted", text[start : i + 1], "".join(chars), start)
            if char == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPABLE:
                char = text[i + 1]
                i += 1
            chars.append(char)
            i += 1
        what = "quoted key" if quote == "`" else "string"
        self.fail(f"unterminated {what}: the {quote} opened here is never closed", start)

    def is_word(self, *words: str) -> bool:
        """Whether the next token is one of ``words`` (case-insensitive)."""
        token = self.peek()
        return token.type == "word" and token.text.upper() in words

    def is_symbol(self, *symbols: str, token: _Token | None = None) -> bool:
        """Whether ``token`` (default: the next token) is one of ``symbols``."""
        token = token or self.peek()
        return token.type == "symbol" and token.text in symbols

    def identifier(self) -> tuple[Kind, str, int]:
        """``prefix "." key`` or a bare attribute name -> (kind, key, position)."""
        token = self.take()
        if self.is_symbol("(", ")", token=token) or token.text.upper() == "OR":
            self.fail(_NO_OR, token.pos)
        if token.type != "word":
            self.expected("an attribute name or params./metrics./tags./attributes.<key>", token)
        if "." not in token.text:
            return "attribute", self.attribute(token.text, token.pos), token.pos
        prefix, key = token.text.split(".", 1)
        kind = _PREFIXES.get(prefix.lower())
        if kind is None:
            names = ", ".join(sorted({f"{p}." for p in _PREFIXES}))
            self.fail(f"unknown prefix {prefix!r}: expected one of {names}", token.pos)
        key_pos = token.pos + len(prefix) + 1
        if not key and self.peek().type == "quoted" and self.peek().text[0] in '`"':
            quoted = self.take()
            key, key_pos = quoted.value, quoted.pos
        if not key:
            self.fail(f"empty key after {prefix + '.'!r}: expected {prefix}.<key>", key_pos)
        if kind == "attribute":
            key = self.attribute(key, key_pos)
        return kind, key, token.pos

    def attribute(self, name: str, position: int) -> str:
        """The canonical attribute name for ``name``; raise if it is not one."""
        canonical = _ATTRIBUTE_ALIASES.get(name.lower(), name.lower())
        if canonical not in ATTRIBUTES:
            valid = ", ".join(ATTRIBUTES)
            self.fail(
                f"unknown attribute {name!r}: expected one of {valid}, "
                f"or params./metrics./tags. followed by a key",
                position,
            )
        return canonical

    def operator(self) -> tuple[str, int]:
        """A comparison operator, normalised to its canonical upper-case spelling."""
        token = self.take()
        if token.type == "symbol" and token.text in _SYMBOL_OPS:
            return _SYMBOL_OPS[token.text], token.pos
        word = token.text.upper() if token.type == "word" else ""
        if word in ("LIKE", "ILIKE", "IN"):
            return word, token.pos
        if word == "NOT":
            if not self.is_word("IN"):
                self.expected("IN after NOT", self.peek())
            self.take()
            return "NOT IN", token.pos
        self.expected(f"a comparison operator ({_OPERATORS})", token)

    def scalar(self) -> _Token:
        """A number or quoted-string token."""
        token = self.take()
        if token.type == "number" or (token.type == "quoted" and token.text[0] != "`"):
            return token
        hint = ""
        if token.type == "word":
            hint = " (strings must be quoted, e.g. 'text')"
        elif token.type == "quoted":
            hint = " (backticks quote keys; quote strings with ' or \")"
        self.expected("a value (a number or a quoted string)", token, hint)

    def value_list(self) -> list[_Token]:
        """``"(" value ( "," value )* ")"`` for IN and NOT IN."""
        opening = self.take()
        if not self.is_symbol("(", token=opening):
            self.expected("'(' to start the list of values", opening)
        if self.is_symbol(")"):
            self.fail("the list of values is empty: give at least one value", self.peek().pos)
        values = [self.scalar()]
        while self.is_symbol(","):
            self.take()
            values.append(self.scalar())
        closing = self.take()
        if not self.is_symbol(")", token=closing):
            self.expected("',' or ')' in the list of values", closing)
        return values

    def clause(self) -> Comparison:
        """``identifier operator value``, checked against the identifier's type."""
        kind, key, position = self.identifier()
        op, op_pos = self.operator()
        tokens = self.value_list() if op in ("IN", "NOT IN") else [self.scalar()]
        name = key if kind == "attribute" else f"{kind}s.{key}"
        values: list[Scalar]
        if kind == "metric" or (kind == "attribute" and ATTRIBUTES[key] == "number"):
            self.check_op(op, op_pos, _NUMBER_OPS, f"{name} is a number", name)
            values = [self.number(token, name) for token in tokens]
        else:
            what = "params and tags are strings" if kind != "attribute" else f"{name} is a string"
            self.check_op(op, op_pos, _STRING_OPS, what, name)
            check_status = name == "status" and op not in ("LIKE", "ILIKE")
            values = [self.string(token, check_status) for token in tokens]
        value = tuple(values) if op in ("IN", "NOT IN") else values[0]
        return Comparison(kind, key, op, value, position)

    def check_op(
        self, op: str, position: int, allowed: frozenset[str], subject: str, name: str
    ) -> None:
        """Raise unless ``op`` is one of ``allowed``; ``subject`` explains why."""
        if op not in allowed:
            listed = ", ".join(o for o in _OPERATORS.split(", ") if o in allowed)
            message = f"{subject}, so only {listed} can be used; {op} is not supported for {name}"
            self.fail(message, position)

    def number(self, token: _Token, name: str) -> int | float:
        """The numeric value of ``token``; raise if it is a string or not finite."""
        if token.type != "number":
            self.expected(f"a number for {name}", token)
        if not any(c in token.text for c in ".eE"):
            return int(token.text)
        value = float(token.text)
        if not math.isfinite(value):
            self.fail(f"the number {token.text} is out of range", token.pos)
        return value

    def string(self, token: _Token, check_status: bool) -> str:
        """The text of ``token`` (numbers as written); a status is checked and upper-cased."""
        if not check_status:
            return token.value
        if token.value.upper() not in _STATUSES:
            valid = ", ".join(_STATUSES)
            self.fail(f"expected a status ({valid}) but found {token.value!r}", token.pos)
        return token.value.upper()

    def filter(self) -> list[Comparison]:
        """``clause ( AND clause )*`` up to the end of the text."""
        clauses = [self.clause()]
        while self.peek().type != "end":
            token = self.peek()
            if token.text.upper() == "OR" or self.is_symbol("(", ")"):
                self.fail(_NO_OR, token.pos)
            if not self.is_word("AND"):
                self.expected("AND or the end of the filter", token)
            self.take()
            clauses.append(self.clause())
        return clauses

    def order_by(self) -> OrderBy:
        """``identifier [ ASC | DESC ]`` up to the end of the clause."""
        kind, key, _ = self.identifier()
        ascending = True
        if self.is_word("ASC", "DESC"):
            ascending = self.take().text.upper() == "ASC"
            after = "the end of the clause"
        else:
            after = "ASC, DESC or the end of the clause"
        token = self.peek()
        if token.type != "end":
            hint = (
                " (give each order_by clause as its own list item)" if self.is_symbol(",") else ""
            )
            self.expected(after, token, hint)
        return OrderBy(kind, key, ascending)


def parse_filter(text: str | None) -> list[Comparison]:
    """Parse a search filter into its AND-ed comparisons; ``None`` or blank text gives ``[]``.

    Raises :class:`~loopml.errors.FilterSyntaxError` with the offending position.
    """
    if text is None:
        return []
    if not isinstance(text, str):
        raise InvalidArgumentError(
            f"The filter must be a string. Got {type(text).__name__} instead.", field="filter"
        )
    if not text.strip():
        return []
    return _Parser(text).filter()


def parse_order_by(clauses: Sequence[str] | None) -> list[OrderBy]:
    """Parse order-by clauses (``identifier [ASC|DESC]`` each); a lone string is one clause.

    Raises :class:`~loopml.errors.FilterSyntaxError` naming the clause index, with the position
    inside that clause.
    """
    if clauses is None:
        return []
    if isinstance(clauses, str):
        clauses = [clauses]
    if not isinstance(clauses, Sequence) or not all(isinstance(c, str) for c in clauses):
        raise InvalidArgumentError(
            f"order_by must be a string or a list of strings. Got {clauses!r} instead.",
            field="order_by",
        )
    result = []
    for index, clause in enumerate(clauses):
        context = f"order_by clause {index} ({clause!r}): "
        result.append(_Parser(clause, context, end_name="end of clause").order_by())
    return result
