"""Tests for the run-search filter and order-by grammar (loopml.storage.search)."""

from __future__ import annotations

import dataclasses

import pytest

from loopml.errors import FilterSyntaxError, InvalidArgumentError
from loopml.storage.search import (
    ATTRIBUTES,
    Comparison,
    OrderBy,
    parse_filter,
    parse_order_by,
)


def one(text: str) -> Comparison:
    """Parse a filter that must hold exactly one clause."""
    clauses = parse_filter(text)
    assert len(clauses) == 1
    return clauses[0]


def filter_error(text: str) -> FilterSyntaxError:
    """The FilterSyntaxError that parsing ``text`` raises."""
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    assert info.value.text == text
    return info.value


def order_error(clauses: list[str]) -> FilterSyntaxError:
    """The FilterSyntaxError that parsing ``clauses`` raises."""
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by(clauses)
    return info.value


# -- empty input --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\t\n "])
def test_empty_filter_gives_no_clauses(text: str | None) -> None:
    assert parse_filter(text) == []


@pytest.mark.parametrize("clauses", [None, []])
def test_empty_order_by_gives_nothing(clauses: list[str] | None) -> None:
    assert parse_order_by(clauses) == []


# -- metrics ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("=", "="),
        ("==", "="),
        ("!=", "!="),
        ("<>", "!="),
        ("<", "<"),
        ("<=", "<="),
        (">", ">"),
        (">=", ">="),
    ],
)
def test_metric_operators(op: str, expected: str) -> None:
    assert one(f"metrics.loss {op} 0.5") == Comparison("metric", "loss", expected, 0.5, 0)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("1", 1),
        ("-3", -3),
        ("+7", 7),
        ("0.25", 0.25),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e-3", 0.001),
        ("2.5E+2", 250.0),
        ("-1e3", -1000.0),
    ],
)
def test_metric_numbers(literal: str, value: float) -> None:
    comparison = one(f"metrics.acc >= {literal}")
    assert comparison.value == value
    assert type(comparison.value) is type(value)


def test_no_spaces_needed_around_operators() -> None:
    assert one("metrics.loss<-1") == Comparison("metric", "loss", "<", -1, 0)
    assert one("metrics.loss>=.5") == Comparison("metric", "loss", ">=", 0.5, 0)


def test_dotted_bare_key_keeps_everything_after_first_dot() -> None:
    assert one("metrics.train.loss < 1").key == "train.loss"


@pytest.mark.parametrize("key", ["a_b", "val-loss", "eval/acc", "ns:metric", "a.b/c-d:e_f", "1st"])
def test_bare_key_characters(key: str) -> None:
    assert one(f"metrics.{key} > 0").key == key


@pytest.mark.parametrize("prefix", ["metrics", "metric", "METRICS", "Metric"])
def test_metric_prefixes(prefix: str) -> None:
    assert one(f"{prefix}.loss < 1").kind == "metric"


# -- params and tags ----------------------------------------------------------------------------


@pytest.mark.parametrize(("prefix", "kind"), [("params", "param"), ("param", "param")])
def test_param_prefixes(prefix: str, kind: str) -> None:
    assert one(f"{prefix}.model = 'rf'") == Comparison(kind, "model", "=", "rf", 0)


@pytest.mark.parametrize(("prefix", "kind"), [("tags", "tag"), ("tag", "tag"), ("TAGS", "tag")])
def test_tag_prefixes(prefix: str, kind: str) -> None:
    assert one(f'{prefix}.team = "ml"') == Comparison(kind, "team", "=", "ml", 0)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("=", "="),
        ("==", "="),
        ("!=", "!="),
        ("<>", "!="),
        ("LIKE", "LIKE"),
        ("like", "LIKE"),
        ("ILIKE", "ILIKE"),
        ("iLike", "ILIKE"),
    ],
)
def test_string_operators(op: str, expected: str) -> None:
    assert one(f"params.model {op} 'rf%'") == Comparison("param", "model", expected, "rf%", 0)


@pytest.mark.parametrize(
    ("literal", "text"),
    [("200", "200"), ("0.10", "0.10"), ("-1", "-1"), ("+5", "+5"), ("1e-3", "1e-3"), (".5", ".5")],
)
def test_numbers_for_params_keep_the_text_as_written(literal: str, text: str) -> None:
    assert one(f"params.x = {literal}").value == text
    assert one(f"tags.x != {literal}").value == text


def test_in_and_not_in_lists() -> None:
    assert one("params.model IN ('rf', \"gbm\", 3)") == Comparison(
        "param", "model", "IN", ("rf", "gbm", "3"), 0
    )
    assert one("tags.team not   in ('a')") == Comparison("tag", "team", "NOT IN", ("a",), 0)
    assert one("params.x in('a','b')").value == ("a", "b")


def test_in_list_of_numbers_for_metrics_is_rejected() -> None:
    error = filter_error("metrics.x IN (1, 2)")
    assert "IN is not supported for metrics.x" in str(error)
    assert error.position == 10


# -- quoting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "key"),
    [
        ("params.`my param`", "my param"),
        ('params."my param"', "my param"),
        ("params.`a.b c`", "a.b c"),
        ("params.`with \\` tick`", "with ` tick"),
        ('params."with \\" quote"', 'with " quote'),
        ("params.`back\\\\slash`", "back\\slash"),
        ("params.`=<>()`", "=<>()"),
    ],
)
def test_quoted_keys(identifier: str, key: str) -> None:
    assert one(f"{identifier} = 'v'").key == key


@pytest.mark.parametrize(
    "text",
    ["params.学习率 = 'x'", "params.`学习 率` = 'x'", "tags.café = 'x'", "tags.\"ключ\" = 'x'"],
)
def test_unicode_keys(text: str) -> None:
    key = one(text).key
    assert key in {"学习率", "学习 率", "café", "ключ"}


def test_unicode_values() -> None:
    assert one("tags.city = 'Zürich 東京'").value == "Zürich 東京"


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'a\\\\b'", "a\\b"),
        ("'a\\%b'", "a\\%b"),  # other escapes reach LIKE unchanged
        ("'a\\_'", "a\\_"),
        ('"it\'s"', "it's"),
        ("'say \"hi\"'", 'say "hi"'),
        ("''", ""),
        ("'  spaced  '", "  spaced  "),
        ("'and or ( )'", "and or ( )"),
    ],
)
def test_string_values(literal: str, value: str) -> None:
    assert one(f"tags.note = {literal}").value == value


# -- attributes ---------------------------------------------------------------------------------


def test_attribute_table() -> None:
    assert ATTRIBUTES == {
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


@pytest.mark.parametrize(
    "name", [n for n, t in ATTRIBUTES.items() if t == "string" and n != "status"]
)
def test_bare_string_attributes(name: str) -> None:
    assert one(f"{name} = 'abc'") == Comparison("attribute", name, "=", "abc", 0)
    assert one(f"{name} LIKE 'a%'").op == "LIKE"
    assert one(f"{name} IN ('a', 'b')").value == ("a", "b")


@pytest.mark.parametrize("name", ["start_time", "end_time"])
def test_bare_number_attributes(name: str) -> None:
    assert one(f"{name} >= 1700000000000") == Comparison("attribute", name, ">=", 1700000000000, 0)


@pytest.mark.parametrize("prefix", ["attributes", "attribute", "attr", "run", "ATTR"])
def test_attribute_prefixes(prefix: str) -> None:
    assert one(f"{prefix}.run_id = 'abc'") == Comparison("attribute", "run_id", "=", "abc", 0)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("name = 'x'", "run_name"),
        ("user_id = 'x'", "user"),
        ("attributes.name = 'x'", "run_name"),
        ("attr.`user_id` = 'x'", "user"),
        ("RUN_NAME = 'x'", "run_name"),
        ("Status = 'running'", "status"),
    ],
)
def test_attribute_aliases_and_case(text: str, key: str) -> None:
    assert one(text).key == key


def test_experiment_id_is_a_string() -> None:
    assert one("experiment_id = 12").value == "12"
    assert one("experiment_id IN (1, '2')").value == ("1", "2")


@pytest.mark.parametrize("status", ["RUNNING", "FINISHED", "FAILED", "KILLED"])
def test_status_values_are_normalised(status: str) -> None:
    assert one(f"status = '{status.lower()}'").value == status
    assert one(f"status != '{status.title()}'").value == status


def test_status_in_list_is_normalised() -> None:
    assert one("status NOT IN ('failed', 'Killed')").value == ("FAILED", "KILLED")


def test_status_like_keeps_the_pattern() -> None:
    assert one("status LIKE 'FIN%'").value == "FIN%"
    assert one("status ILIKE 'fin%'").value == "fin%"


# -- combining clauses --------------------------------------------------------------------------


def test_and_joins_clauses_with_positions() -> None:
    text = "metrics.acc > 0.9 and params.model = 'rf' AND status = 'finished' And tags.x = 'y'"
    assert parse_filter(text) == [
        Comparison("metric", "acc", ">", 0.9, 0),
        Comparison("param", "model", "=", "rf", text.index("params")),
        Comparison("attribute", "status", "=", "FINISHED", text.index("status")),
        Comparison("tag", "x", "=", "y", text.index("tags")),
    ]


def test_positions_count_leading_whitespace() -> None:
    assert one("   metrics.x = 1").position == 3


def test_keywords_inside_keys_and_values_are_not_special() -> None:
    clauses = parse_filter("params.and = 'or' and tags.`a or b` = 'x and y' and params.in = 1")
    assert [(c.key, c.value) for c in clauses] == [
        ("and", "or"),
        ("a or b", "x and y"),
        ("in", "1"),
    ]


def test_comparison_is_frozen() -> None:
    comparison = one("metrics.x = 1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        comparison.key = "y"  # type: ignore[misc]


# -- filter errors ------------------------------------------------------------------------------


def test_error_is_an_invalid_argument_error_with_a_pointer() -> None:
    error = filter_error("metrics.x = foo")
    assert isinstance(error, InvalidArgumentError)
    assert error.code == "INVALID_FILTER"
    assert error.details == {"position": 12, "text": error.text}
    assert str(error).endswith("\n  metrics.x = foo\n              ^")


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("metrics.x = 1 OR metrics.y = 2", 14),
        ("metrics.x = 1 or metrics.y = 2", 14),
        ("(metrics.x = 1)", 0),
        ("metrics.x = 1 and (metrics.y = 2)", 18),
        ("metrics.x = 1)", 13),
        ("metrics.x = 1 || metrics.y = 2", 14),
        ("metrics.x = 1 && metrics.y = 2", 14),
        ("or metrics.x = 1", 0),
    ],
)
def test_or_and_parentheses_are_rejected(text: str, position: int) -> None:
    error = filter_error(text)
    assert "OR and parentheses are not supported" in str(error)
    assert "run two searches" in str(error)
    assert error.position == position


@pytest.mark.parametrize(
    ("text", "found", "position"),
    [
        ("metrics.x foo 1", "'foo'", 10),
        ("metrics.x", "end of filter", 9),
        ("metrics.x 1", "'1'", 10),
        ("metrics.x ! 1", None, 10),
        ("params.x NOTIN ('a')", "'NOTIN'", 9),
    ],
)
def test_bad_operator(text: str, found: str | None, position: int) -> None:
    error = filter_error(text)
    if found is None:
        assert "unexpected character '!'" in str(error)
    else:
        assert (
            "expected a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN) "
            f"but found {found}"
        ) in str(error)
    assert error.position == position


def test_not_must_be_followed_by_in() -> None:
    error = filter_error("params.x NOT LIKE 'a'")
    assert "expected IN after NOT but found 'LIKE'" in str(error)
    assert error.position == 13


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("metrics.x = 1 metrics.y = 2", 14),
        ("metrics.x = 1 2", 14),
        ("metrics.x = 1 and metrics.y = 2 ,", 32),
        ("metrics.x = 1 'junk'", 14),
    ],
)
def test_trailing_garbage(text: str, position: int) -> None:
    error = filter_error(text)
    assert "expected AND or the end of the filter but found" in str(error)
    assert error.position == position


def test_dangling_and() -> None:
    error = filter_error("metrics.x = 1 and ")
    assert "but found end of filter" in str(error)
    assert error.position == 18


@pytest.mark.parametrize(
    ("text", "position", "what"),
    [
        ("params.x = 'abc", 11, "string"),
        ('params.x = "abc', 11, "string"),
        ("params.x = 'abc\\'", 11, "string"),
        ("params.`abc = 'x'", 7, "quoted key"),
        ("params.x = 'a' and tags.y = 'b", 28, "string"),
    ],
)
def test_unterminated_quotes(text: str, position: int, what: str) -> None:
    error = filter_error(text)
    assert f"unterminated {what}" in str(error)
    assert error.position == position


@pytest.mark.parametrize(
    ("text", "found", "position"),
    [
        ("params.x = abc", "'abc'", 11),
        ("params.x = ", "end of filter", 11),
        ("metrics.x = nan", "'nan'", 12),
        ("metrics.x = inf", "'inf'", 12),
        ("metrics.x = -inf", "'-inf'", 12),
        ("metrics.x = 1e", "'1e'", 12),
        ("metrics.x = 1.2.3", "'1.2.3'", 12),
        ("metrics.x = 200abc", "'200abc'", 12),
        ("params.x = `abc`", "'`abc`'", 11),
    ],
)
def test_bad_values(text: str, found: str, position: int) -> None:
    error = filter_error(text)
    assert f"expected a value (a number or a quoted string) but found {found}" in str(error)
    assert error.position == position


def test_bare_word_value_hints_at_quoting() -> None:
    assert "strings must be quoted" in str(filter_error("params.x = abc"))


def test_backtick_value_hints_at_quotes() -> None:
    assert "backticks quote keys" in str(filter_error("params.x = `abc`"))


def test_huge_number_is_out_of_range() -> None:
    error = filter_error("metrics.x < 1e999")
    assert "out of range" in str(error)
    assert error.position == 12


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("params.x IN 'a'", 12),
        ("params.x IN ()", 13),
        ("params.x IN ('a',)", 17),
        ("params.x IN ('a' 'b')", 17),
        ("params.x IN ('a'", 16),
        ("params.x NOT IN (a)", 17),
    ],
)
def test_bad_in_lists(text: str, position: int) -> None:
    assert filter_error(text).position == position


def test_empty_in_list_message() -> None:
    assert "list of values is empty" in str(filter_error("params.x IN ()"))


def test_in_list_needs_parenthesis_message() -> None:
    message = str(filter_error("params.x IN 'a'"))
    assert "expected '(' to start the list of values but found the string 'a'" in message


@pytest.mark.parametrize(
    ("text", "op", "position"),
    [
        ("metrics.x LIKE 'a%'", "LIKE", 10),
        ("metrics.x ILIKE 'a%'", "ILIKE", 10),
        ("metrics.x NOT IN (1)", "NOT IN", 10),
        ("start_time LIKE '1%'", "LIKE", 11),
        ("end_time IN (1, 2)", "IN", 9),
    ],
)
def test_string_operators_on_numbers(text: str, op: str, position: int) -> None:
    error = filter_error(text)
    assert "is a number, so only =, !=, <, <=, >, >= can be used" in str(error)
    assert f"{op} is not supported" in str(error)
    assert error.position == position


@pytest.mark.parametrize(
    ("text", "op", "position"),
    [
        ("params.x < 1", "<", 9),
        ("params.x <= '1'", "<=", 9),
        ("tags.x > 'a'", ">", 7),
        ("tags.x >= 'a'", ">=", 7),
    ],
)
def test_ordering_operators_on_params_and_tags(text: str, op: str, position: int) -> None:
    error = filter_error(text)
    assert "params and tags are strings, so only =, !=, LIKE, ILIKE, IN, NOT IN can be used" in str(
        error
    )
    assert f"{op} is not supported" in str(error)
    assert error.position == position


def test_ordering_operators_on_string_attributes() -> None:
    error = filter_error("run_name > 'a'")
    assert "run_name is a string, so only =, !=, LIKE, ILIKE, IN, NOT IN" in str(error)
    assert error.position == 9


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("metrics.x = 'a'", 12),
        ('metrics.x > "0.5"', 12),
        ("start_time > '2024-01-01'", 13),
        ("metrics.x != 1 and metrics.y = '2'", 31),
    ],
)
def test_strings_for_numbers(text: str, position: int) -> None:
    error = filter_error(text)
    assert "expected a number for" in str(error)
    assert "but found the string" in str(error)
    assert error.position == position


@pytest.mark.parametrize(
    ("text", "position"),
    [("status = 'done'", 9), ("status IN ('RUNNING', 'paused')", 22), ("status = 1", 9)],
)
def test_bad_status(text: str, position: int) -> None:
    error = filter_error(text)
    assert "expected a status (RUNNING, FINISHED, FAILED, KILLED) but found" in str(error)
    assert error.position == position


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("foo = 1", 0),
        ("attributes.foo = 1", 11),
        ("attr.`bad name` = 1", 5),
        ("metrics.x = 1 and loss < 2", 18),
    ],
)
def test_unknown_attribute(text: str, position: int) -> None:
    error = filter_error(text)
    assert "unknown attribute" in str(error)
    for name in ATTRIBUTES:
        assert name in str(error)
    assert error.position == position


def test_unknown_prefix() -> None:
    error = filter_error("metricz.loss < 1")
    assert "unknown prefix 'metricz'" in str(error)
    assert "metrics." in str(error)
    assert error.position == 0


@pytest.mark.parametrize(
    ("text", "position"),
    [("params. = 'x'", 7), ("params.`` = 'x'", 7), ("tags.\"\" = 'x'", 5), ("metrics.", 8)],
)
def test_empty_key(text: str, position: int) -> None:
    error = filter_error(text)
    assert "empty key" in str(error)
    assert error.position == position


@pytest.mark.parametrize(
    ("text", "found"),
    [("1 = 1", "'1'"), ("'a' = 1", "the string 'a'"), ("= 1", "'='"), ("`a` = 1", "'`a`'")],
)
def test_bad_identifier(text: str, found: str) -> None:
    error = filter_error(text)
    assert (
        f"expected an attribute name or params./metrics./tags./attributes.<key> but found {found}"
        in str(error)
    )
    assert error.position == 0


@pytest.mark.parametrize(("text", "char"), [("metrics.x = 1 ;", ";"), ("params.x = 'a' # c", "#")])
def test_unexpected_character(text: str, char: str) -> None:
    error = filter_error(text)
    assert f"unexpected character '{char}'" in str(error)
    assert error.position == text.index(char)


def test_first_error_from_the_left_wins() -> None:
    error = filter_error("foo = 1 and metrics.x = 'unterminated")
    assert "unknown attribute 'foo'" in str(error)


# -- order by -----------------------------------------------------------------------------------


def test_order_by_clauses() -> None:
    assert parse_order_by(
        [
            "metrics.loss",
            "metrics.acc DESC",
            "params.lr asc",
            "tags.`team name` desc",
            'params."a.b"',
            "start_time DESC",
            "name",
            "attr.user_id ASC",
            "  metrics.x   Desc  ",
        ]
    ) == [
        OrderBy("metric", "loss", True),
        OrderBy("metric", "acc", False),
        OrderBy("param", "lr", True),
        OrderBy("tag", "team name", False),
        OrderBy("param", "a.b", True),
        OrderBy("attribute", "start_time", False),
        OrderBy("attribute", "run_name", True),
        OrderBy("attribute", "user", True),
        OrderBy("metric", "x", False),
    ]


def test_order_by_accepts_a_single_string() -> None:
    assert parse_order_by("metrics.loss DESC") == [OrderBy("metric", "loss", False)]


def test_order_by_unicode_key() -> None:
    assert parse_order_by(["metrics.`精度 top-1` DESC"]) == [OrderBy("metric", "精度 top-1", False)]


@pytest.mark.parametrize(
    ("clauses", "index", "message", "position"),
    [
        (["metrics.loss sideways"], 0, "expected ASC, DESC or the end of the clause", 13),
        (["metrics.a", "metrics.b DESC extra"], 1, "expected the end of the clause", 15),
        (["metrics.a", "params.b", ""], 2, "but found end of clause", 0),
        (["   "], 0, "but found end of clause", 3),
        (["foo DESC"], 0, "unknown attribute 'foo'", 0),
        (["metrics. DESC"], 0, "empty key", 8),
        (["metrics.a, params.b"], 0, "its own list item", 9),
        (["params.`x"], 0, "unterminated quoted key", 7),
        (["metrics.a = 1"], 0, "expected ASC, DESC or the end of the clause but found '='", 10),
    ],
)
def test_order_by_errors(clauses: list[str], index: int, message: str, position: int) -> None:
    error = order_error(clauses)
    assert f"order_by clause {index} " in str(error)
    assert message in str(error)
    assert error.position == position
    assert error.text == clauses[index]
