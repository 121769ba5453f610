"""Signatures: inference from every input form, JSON, and enforcement on predict."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from loopml.errors import InvalidArgumentError, SignatureError
from loopml.models.signature import (
    ColumnSpec,
    Signature,
    TensorSpec,
    enforce_signature,
    infer_signature,
    to_model_input,
)

CHURN = Signature(
    inputs=(
        ColumnSpec("tenure", "int64"),
        ColumnSpec("plan", "string"),
        ColumnSpec("spend", "float64"),
    )
)
IMAGE = Signature(inputs=TensorSpec("float32", (-1, 4)))


def churn_frame(rows: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tenure": np.arange(rows, dtype=np.int64),
            "plan": ["basic", "pro", "max"] * (rows // 3) + ["basic"] * (rows % 3),
            "spend": np.linspace(0.0, 100.0, rows),
        }
    )


def mismatch(signature: Signature, data: Any) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        enforce_signature(signature, data)
    json.dumps(caught.value.problems)  # always JSON-safe
    json.dumps(caught.value.to_dict())
    return caught.value


def single(signature: Signature, data: Any) -> dict[str, Any]:
    """The one problem ``data`` has against ``signature``."""
    error = mismatch(signature, data)
    assert len(error.problems) == 1, error.message
    return error.problems[0]


# --- inference -------------------------------------------------------------------------------


def test_infers_columns_from_a_dataframe_of_every_dtype() -> None:
    frame = pd.DataFrame(
        {
            "i": np.array([1, 2], dtype=np.int32),
            "u": np.array([1, 2], dtype=np.uint8),
            "f": np.array([0.5, np.nan], dtype=np.float32),
            "b": [True, False],
            "s": ["a", "b"],
            "o": np.array(["a", None], dtype=object),
            "t": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "c": pd.Categorical(["x", "y"]),
            "n": pd.array([1, 2], dtype="Int64"),
            "n_na": pd.array([1, None], dtype="Int64"),
            "f64": pd.array([1.5, None], dtype="Float64"),
            "ps": pd.array(["a", "b"], dtype="string"),
            "mixed": np.array([1, "a"], dtype=object),
        }
    )
    signature = infer_signature(frame)
    assert signature.kind == "columns"
    assert {c.name: c.dtype for c in signature.inputs} == {  # type: ignore[union-attr]
        "i": "int32",
        "u": "uint8",
        "f": "float32",
        "b": "bool",
        "s": "string",
        "o": "string",
        "t": "datetime64[ns]",
        "c": "string",
        "n": "int64",
        "n_na": "float64",  # int64 could not hold the example's own missing value
        "f64": "float64",
        "ps": "string",
        "mixed": "object",
    }
    assert all(c.required for c in signature.inputs)  # type: ignore[union-attr]
    assert enforce_signature(signature, frame).shape == frame.shape  # accepts its own example


@pytest.mark.parametrize(
    ("example", "dtype", "shape"),
    [
        (np.zeros((3, 4), dtype=np.float32), "float32", (-1, 4)),
        (np.zeros((2, 8, 8, 3), dtype=np.uint8), "uint8", (-1, 8, 8, 3)),
        (np.arange(5), "int64", (-1,)),
        (np.array([[True], [False]]), "bool", (-1, 1)),
        (np.array([["a", "b"]]), "string", (-1, 2)),
        ([[1, 2], [3, 4]], "int64", (-1, 2)),
        ([[1.5, 2], [3, 4]], "float64", (-1, 2)),
        ([[1, None]], "float64", (-1, 2)),
    ],
)
def test_infers_a_tensor_from_arrays_and_2d_lists(example: Any, dtype: str, shape: tuple) -> None:
    signature = infer_signature(example)
    assert signature.kind == "tensor"
    assert signature.inputs == TensorSpec(dtype, shape)
    enforce_signature(signature, example)


def test_infers_columns_from_records_as_pandas_would() -> None:
    records = [{"a": 1, "b": "x"}, {"a": 2, "c": 1.5}]
    signature = infer_signature(records)
    assert signature.inputs == (
        ColumnSpec("a", "int64"),
        ColumnSpec("b", "string"),
        ColumnSpec("c", "float64"),
    )
    # a key missing from a row makes pandas' int column a float one
    assert infer_signature([{"a": 1}, {"b": 2}]).inputs == (
        ColumnSpec("a", "float64"),
        ColumnSpec("b", "float64"),
    )


def test_infers_columns_from_a_dict_of_columns_and_from_one_record() -> None:
    expected = (ColumnSpec("a", "int64"), ColumnSpec("b", "string"))
    assert infer_signature({"a": [1, 2], "b": ["x", "y"]}).inputs == expected
    assert infer_signature({"a": 1, "b": "x"}).inputs == expected


def test_infers_columns_from_a_pyarrow_table() -> None:
    table = pa.table(
        {
            "i": pa.array([1, 2], pa.int16()),
            "i_null": [1, None],
            "s": ["a", "b"],
            "f": [0.5, 1.5],
            "b": [True, False],
            "t": pa.array([1, 2], pa.timestamp("us")),
        }
    )
    assert [c.dtype for c in infer_signature(table).inputs] == [  # type: ignore[union-attr]
        "int16",
        "float64",
        "string",
        "float64",
        "bool",
        "datetime64[ns]",
    ]


def test_infers_outputs_from_predictions() -> None:
    frame = churn_frame()
    assert infer_signature(frame, np.array([0, 1, 1])).outputs == TensorSpec("int64", (-1,))
    assert infer_signature(frame, np.zeros((3, 2))).outputs == TensorSpec("float64", (-1, 2))
    series = pd.Series([0.1, 0.2, 0.3], name="churn")
    assert infer_signature(frame, series).outputs == (ColumnSpec("churn", "float64"),)
    outputs = pd.DataFrame({"label": [1, 0, 1], "score": [0.9, 0.1, 0.8]})
    assert infer_signature(frame, outputs).outputs == (
        ColumnSpec("label", "int64"),
        ColumnSpec("score", "float64"),
    )
    assert infer_signature(frame).outputs is None


@pytest.mark.parametrize(
    "example",
    [
        None,
        5,
        2.5,
        "text",
        np.float64(1.0),
        np.array(3),
        [],
        {},
        pd.DataFrame(),
        pd.DataFrame({"a": []}),
        np.zeros((0, 3)),
        pa.table({"a": pa.array([], pa.int64())}),
        [[1, 2], [3]],
        {"a": [1, 2], "b": [1]},
        [{"a": 1}, 5],
        object(),
    ],
    ids=repr,
)
def test_a_bad_example_names_the_input_example(example: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        infer_signature(example)
    assert caught.value.details["field"] == "input_example"
    assert "input_example" in caught.value.message


def test_a_bad_output_names_the_output() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        infer_signature(churn_frame(), 0.5)
    assert caught.value.details["field"] == "output"


# --- JSON --------------------------------------------------------------------------------------


def test_to_dict_is_plain_json_in_a_documented_shape() -> None:
    signature = Signature(
        inputs=(ColumnSpec("tenure", "int64"), ColumnSpec("plan", "string", required=False)),
        outputs=TensorSpec("float64", (-1,)),
    )
    assert signature.to_dict() == {
        "format_version": 1,
        "inputs": {
            "type": "columns",
            "columns": [
                {"name": "tenure", "dtype": "int64", "required": True},
                {"name": "plan", "dtype": "string", "required": False},
            ],
        },
        "outputs": {"type": "tensor", "dtype": "float64", "shape": [-1]},
    }


@pytest.mark.parametrize(
    "signature",
    [
        CHURN,
        IMAGE,
        infer_signature(churn_frame(), np.zeros(3)),
        infer_signature(np.zeros((2, 3, 3)), pd.DataFrame({"a": [1, 2]})),
        Signature(inputs=TensorSpec("datetime64[ns]", (-1, -1, 2))),
    ],
)
def test_json_round_trip(signature: Signature) -> None:
    text = json.dumps(signature.to_dict())
    assert Signature.from_dict(json.loads(text)) == signature


def test_a_dict_without_format_version_or_outputs_still_reads() -> None:
    body = {"inputs": {"type": "tensor", "dtype": "float32", "shape": [-1, 4]}}
    assert Signature.from_dict(body) == IMAGE


def _columns(*columns: Any) -> dict[str, Any]:
    return {"inputs": {"type": "columns", "columns": list(columns)}}


GOOD_COLUMN = {"name": "a", "dtype": "int64"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "signature"),
        ({}, "inputs"),
        ({"format_version": 2, **_columns(GOOD_COLUMN)}, "format_version"),
        ({"inputs": []}, "inputs"),
        ({"inputs": {"type": "matrix"}}, "inputs.type"),
        (_columns(), "inputs.columns"),
        ({"inputs": {"type": "columns", "columns": {"a": "int64"}}}, "inputs.columns"),
        (_columns(GOOD_COLUMN, "b"), "inputs.columns[1]"),
        (_columns(GOOD_COLUMN, {"name": "b", "dtype": "int65"}), "inputs.columns[1].dtype"),
        (_columns({"dtype": "int64"}), "inputs.columns[0].name"),
        (_columns({"name": "", "dtype": "int64"}), "inputs.columns[0].name"),
        (_columns({**GOOD_COLUMN, "required": "yes"}), "inputs.columns[0].required"),
        (_columns(GOOD_COLUMN, GOOD_COLUMN), "inputs.columns"),
        ({"inputs": {"type": "tensor", "dtype": "float32"}}, "inputs.shape"),
        ({"inputs": {"type": "tensor", "dtype": "float32", "shape": [4]}}, "inputs.shape"),
        ({"inputs": {"type": "tensor", "dtype": "float32", "shape": [-1, 0]}}, "inputs.shape"),
        ({"inputs": {"type": "tensor", "dtype": "float32", "shape": ["x"]}}, "inputs.shape"),
        ({"inputs": {"type": "tensor", "dtype": "double", "shape": [-1]}}, "inputs.dtype"),
        (
            {**_columns(GOOD_COLUMN), "outputs": {"type": "tensor", "dtype": "x", "shape": [-1]}},
            "outputs.dtype",
        ),
    ],
)
def test_from_dict_names_the_bad_field(body: Any, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        Signature.from_dict(body)
    assert caught.value.details["field"] == field
    assert not isinstance(caught.value, SignatureError)


def test_constructors_validate_their_fields() -> None:
    with pytest.raises(InvalidArgumentError, match="'dtype'"):
        ColumnSpec("a", "int65")
    with pytest.raises(InvalidArgumentError, match="'shape'"):
        TensorSpec("float32", (4,))
    with pytest.raises(InvalidArgumentError, match="'inputs'"):
        Signature(inputs=())
    with pytest.raises(InvalidArgumentError, match="more than once"):
        Signature(inputs=(ColumnSpec("a", "int64"), ColumnSpec("a", "string")))
    assert TensorSpec("float32", [-1, 4]).shape == (-1, 4)  # type: ignore[arg-type]


def test_kind_and_describe() -> None:
    signature = Signature(
        inputs=(ColumnSpec("tenure", "int64"), ColumnSpec("plan", "string", required=False)),
        outputs=TensorSpec("float64", (-1,)),
    )
    assert signature.kind == "columns"
    assert signature.describe() == [
        "tenure: int64",
        "plan: string (optional)",
        "output: float64 [-1]",
    ]
    assert IMAGE.kind == "tensor"
    assert IMAGE.describe() == ["input: float32 [-1, 4]"]
    with_columns_out = Signature(inputs=IMAGE.inputs, outputs=(ColumnSpec("churn", "bool"),))
    assert with_columns_out.describe()[-1] == "output churn: bool"


# --- enforcement: every problem, one error ----------------------------------------------------


def test_every_problem_is_reported_in_one_error() -> None:
    data = pd.DataFrame({"Tenure": [1, 2], "plan": [1.0, 2.0], "spend": ["a", "b"]}).astype(
        {"spend": object}
    )
    error = mismatch(CHURN, data)
    assert error.message.splitlines() == [
        "Input does not match the model signature:",
        "  - column 'tenure': missing (expected int64)",
        "  - column 'plan': got float64, expected string",
        "  - column 'spend': got string values, expected float64",
        "The input got unexpected columns ['Tenure'] (column names are case-sensitive).",
    ]
    assert error.problems == [
        {"field": "tenure", "problem": "missing", "expected": "int64", "got": None},
        {"field": "plan", "problem": "type", "expected": "string", "got": "float64"},
        {"field": "spend", "problem": "type", "expected": "float64", "got": "string values"},
    ]
    assert error.code == "SIGNATURE_MISMATCH"
    assert error.to_dict()["details"]["problems"] == error.problems


def test_extra_columns_are_named_only_when_columns_are_missing() -> None:
    frame = churn_frame().assign(spend=["a", "b", "c"], extra=1)
    assert "unexpected" not in mismatch(CHURN, frame).message


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (pd.DataFrame({"x": [1]}), ["tenure", "plan", "spend"]),
        (churn_frame().drop(columns=["plan"]), ["plan"]),
        (churn_frame().assign(tenure=[1.0, 2.0, 3.0]), ["tenure"]),
        (churn_frame().assign(tenure=[True, False, True], plan=[1, 2, 3]), ["tenure", "plan"]),
        (churn_frame().assign(spend=["1.5", "2", "3"]), ["spend"]),
        (churn_frame().assign(tenure=pd.array([1, None, 3], dtype="Int64")), ["tenure"]),
        (
            [{"tenure": 1, "plan": "a", "spend": 1.0}, {"plan": "b", "spend": "x"}],
            ["tenure", "spend"],
        ),
        ({"tenure": [1, None], "plan": ["a", 2], "spend": [1.0, 2.0]}, ["tenure", "plan"]),
        (pa.table({"tenure": [1, None], "plan": ["a", "b"], "spend": [1, 2]}), ["tenure"]),
        (np.zeros((2, 2)), ["input"]),
    ],
)
def test_each_offending_field_gets_one_problem(data: Any, fields: list[str]) -> None:
    error = mismatch(CHURN, data)
    assert [p["field"] for p in error.problems] == fields
    lines = error.message.splitlines()[1:]
    for field, line in zip(fields, lines, strict=False):
        assert (f"'{field}'" if field != "input" else "input:") in line


def test_missing_values_in_an_int_column_are_a_problem() -> None:
    problem = single(CHURN, churn_frame().assign(tenure=pd.array([1, None, None], dtype="Int64")))
    assert problem == {
        "field": "tenure",
        "problem": "nulls",
        "expected": "int64",
        "got": "2 missing values",
    }
    message = mismatch(CHURN, [{"plan": "a", "spend": 1.0}]).message
    assert "column 'tenure': missing (expected int64)" in message


def test_a_key_missing_from_some_records_is_a_missing_value() -> None:
    records = [{"tenure": 1, "plan": "a", "spend": 1.0}, {"plan": "b"}]
    error = mismatch(CHURN, records)
    assert error.problems == [
        {"field": "tenure", "problem": "nulls", "expected": "int64", "got": "1 missing value"}
    ]
    assert "column 'tenure': has 1 missing value, expected int64" in error.message


def test_floats_strings_and_datetimes_may_hold_missing_values() -> None:
    signature = Signature(
        inputs=(
            ColumnSpec("f", "float32"),
            ColumnSpec("s", "string"),
            ColumnSpec("t", "datetime64[ns]"),
        )
    )
    out = enforce_signature(signature, [{"f": 1.5, "s": "a", "t": pd.Timestamp("2024-01-01")}, {}])
    assert out["f"].dtype == np.float32
    assert np.isnan(out["f"][1])
    assert out["s"].isna().tolist() == [False, True]
    assert out["t"].dtype.kind == "M"
    assert out["t"].isna().tolist() == [False, True]


def test_a_nullable_int_column_without_nulls_becomes_numpy_int() -> None:
    out = enforce_signature(CHURN, churn_frame().astype({"tenure": "Int64"}))
    assert out["tenure"].dtype == np.int64
    floats = Signature(inputs=(ColumnSpec("n", "float64"),))
    out = enforce_signature(floats, pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}))
    assert out["n"].dtype == np.float64
    assert out["n"][0] == 1.0
    assert np.isnan(out["n"][1])


# --- enforcement: casts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("int8", "int64"),
        ("int32", "int64"),
        ("uint8", "int16"),
        ("uint32", "uint64"),
        ("int32", "float64"),
        ("int64", "float64"),
        ("int32", "float32"),
        ("int8", "float32"),
        ("float32", "float64"),
    ],
)
def test_safe_casts_are_applied_and_keep_the_values(given: str, expected: str) -> None:
    values = np.array([0, 1, 7, 100], dtype=given)
    signature = Signature(inputs=(ColumnSpec("x", expected),))
    out = enforce_signature(signature, pd.DataFrame({"x": values}))
    assert out["x"].dtype == np.dtype(expected)
    np.testing.assert_array_equal(out["x"].to_numpy(), values.astype(expected))
    tensor = enforce_signature(Signature(inputs=TensorSpec(expected, (-1,))), values)
    assert tensor.dtype == np.dtype(expected)
    np.testing.assert_array_equal(tensor, values)


@pytest.mark.parametrize(
    ("values", "expected", "got"),
    [
        (np.array([1.0, 2.0]), "int64", "float64"),  # whole floats are still floats
        (np.array([1.5, 2.0], dtype=np.float32), "int32", "float32"),
        (np.array([1, 2], dtype=np.int64), "int32", "int64"),
        (np.array([1, 2], dtype=np.int64), "uint64", "int64"),
        (np.array([1, 2], dtype=np.uint64), "int64", "uint64"),
        (np.array([1, 2], dtype=np.int64), "float32", "int64"),
        (np.array([1.0, 2.0]), "float32", "float64"),
        (np.array([True, False]), "int64", "bool"),
        (np.array([True, False]), "float64", "bool"),
        (np.array([1, 0]), "bool", "int64"),
        (np.array(["1.5", "2"], dtype=object), "float64", "string values"),
        (np.array([1, 2]), "string", "int64"),
        (np.array([1.5, 2.5]), "string", "float64"),
        (np.array(["2024-01-01"], dtype="datetime64[ns]"), "int64", "datetime64[ns]"),
        (np.array([1, 2]), "datetime64[ns]", "int64"),
        (np.array(["2024-01-01"], dtype=object), "datetime64[ns]", "string values"),
        (np.array([1, "a"], dtype=object), "int64", "mixed-integer values"),
        (np.array([1, 2.5], dtype=object), "int64", "float values"),
        (np.array([True, False], dtype=object), "int64", "bool values"),
    ],
)
def test_unsafe_casts_are_refused(values: np.ndarray, expected: str, got: str) -> None:
    signature = Signature(inputs=(ColumnSpec("x", expected),))
    assert single(signature, pd.DataFrame({"x": values})) == {
        "field": "x",
        "problem": "type",
        "expected": expected,
        "got": got,
    }


def test_python_ints_and_floats_in_object_columns_are_checked_by_value() -> None:
    ints = Signature(inputs=(ColumnSpec("x", "int8"), ColumnSpec("y", "float32")))
    out = enforce_signature(ints, pd.DataFrame({"x": [1, -5], "y": [0.1, 2]}, dtype=object))
    assert out.dtypes.tolist() == [np.dtype("int8"), np.dtype("float32")]
    assert out["x"].tolist() == [1, -5]
    assert out["y"].tolist() == [np.float32(0.1), 2.0]
    problem = single(ints, [{"x": 300, "y": 1.0}])
    assert problem["field"] == "x"
    assert problem["got"] == "int values outside the int8 range"
    problem = single(ints, [{"x": 1, "y": 2**40 + 1}])
    assert problem["got"] == "int values that float32 cannot hold exactly"
    problem = single(ints, [{"x": 1, "y": 1e300}])
    assert problem["got"] == "float values outside the float32 range"
    huge = Signature(inputs=(ColumnSpec("x", "int64"),))
    assert single(huge, {"x": [2**70]})["got"] == "int values outside the int64 range"
    unsigned = Signature(inputs=(ColumnSpec("x", "uint64"),))
    assert enforce_signature(unsigned, {"x": [2**64 - 1]})["x"][0] == 2**64 - 1


def test_a_bool_column_takes_bools_only() -> None:
    signature = Signature(inputs=(ColumnSpec("b", "bool"),))
    assert enforce_signature(signature, [{"b": True}, {"b": False}])["b"].dtype == np.bool_
    assert single(signature, [{"b": 1}])["got"] == "int values"
    assert single(signature, [{"b": True}, {"b": None}])["problem"] == "nulls"
    boolean = pd.DataFrame({"b": pd.array([True, False], dtype="boolean")})
    assert enforce_signature(signature, boolean)["b"].dtype == np.bool_


def test_string_and_category_columns_pass_unchanged() -> None:
    frame = churn_frame().assign(plan=pd.Categorical(["basic", "pro", "max"]))
    out = enforce_signature(CHURN, frame)
    assert isinstance(out["plan"].dtype, pd.CategoricalDtype)
    assert out["plan"].tolist() == ["basic", "pro", "max"]


def test_object_columns_accept_anything() -> None:
    signature = Signature(inputs=(ColumnSpec("o", "object"),))
    out = enforce_signature(signature, {"o": [1, "a", None]})
    assert out["o"].tolist() == [1, "a", None]


# --- enforcement: column order, extras, input forms -------------------------------------------


def test_columns_come_back_in_the_signature_order_without_extras() -> None:
    frame = churn_frame()[["spend", "plan", "tenure"]].assign(extra=[1, 2, 3])
    frame.index = [10, 11, 12]
    out = enforce_signature(CHURN, frame)
    assert list(out.columns) == ["tenure", "plan", "spend"]
    assert list(out.index) == [10, 11, 12]
    pd.testing.assert_frame_equal(out, churn_frame().set_axis([10, 11, 12]), check_dtype=False)
    assert "extra" in frame.columns  # the caller's frame is not changed


def _as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")


@pytest.mark.parametrize(
    "convert",
    [
        lambda f: f,
        _as_records,
        lambda f: f.to_dict("list"),
        lambda f: pa.Table.from_pandas(f),
        lambda f: pa.Table.from_pandas(f).to_batches()[0],
    ],
    ids=["dataframe", "records", "dict", "pyarrow", "recordbatch"],
)
def test_every_tabular_input_form_gives_the_same_frame(convert: Any) -> None:
    out = enforce_signature(CHURN, convert(churn_frame()))
    assert isinstance(out, pd.DataFrame)
    assert out.dtypes.tolist()[0::2] == [np.dtype("int64"), np.dtype("float64")]
    pd.testing.assert_frame_equal(out, churn_frame(), check_dtype=False)


def test_one_record_as_a_dict_is_one_row() -> None:
    out = enforce_signature(CHURN, {"tenure": 5, "plan": "pro", "spend": 9.5, "extra": "x"})
    assert out.to_dict("records") == [{"tenure": 5, "plan": "pro", "spend": 9.5}]


def test_a_2d_array_or_list_is_read_positionally_for_a_column_signature() -> None:
    numeric = Signature(inputs=(ColumnSpec("a", "float64"), ColumnSpec("b", "float64")))
    out = enforce_signature(numeric, np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert list(out.columns) == ["a", "b"]
    assert out["b"].tolist() == [2.0, 4.0]
    out = enforce_signature(CHURN, [[1, "pro", 2.5], [2, "max", 3]])
    assert out.to_dict("list") == {"tenure": [1, 2], "plan": ["pro", "max"], "spend": [2.5, 3.0]}
    problem = single(CHURN, [[1, 2]])
    assert problem["field"] == "input"
    assert problem["problem"] == "shape"


def test_optional_columns_may_be_absent() -> None:
    signature = Signature(inputs=(ColumnSpec("a", "int64"), ColumnSpec("b", "int64", False)))
    assert list(enforce_signature(signature, {"a": [1]}).columns) == ["a"]
    assert list(enforce_signature(signature, {"b": [2], "a": [1]}).columns) == ["a", "b"]
    assert single(signature, {"a": [1], "b": [1.5]})["field"] == "b"


def test_a_duplicated_input_column_is_a_problem() -> None:
    frame = pd.DataFrame([[1, 2, "a", 1.0]], columns=["tenure", "tenure", "plan", "spend"])
    problem = single(CHURN, frame)
    assert problem["field"] == "tenure"
    assert problem["problem"] == "duplicate"


def test_zero_rows_pass_with_the_right_columns() -> None:
    out = enforce_signature(CHURN, churn_frame().iloc[:0])
    assert list(out.columns) == ["tenure", "plan", "spend"]
    assert len(out) == 0


def test_one_row_and_ten_thousand_rows() -> None:
    big = churn_frame(10_000)
    assert enforce_signature(CHURN, big.iloc[:1]).shape == (1, 3)
    out = enforce_signature(CHURN, big.astype({"tenure": np.int32, "spend": np.float32}))
    assert out.shape == (10_000, 3)
    assert out.dtypes.tolist()[0::2] == [np.dtype("int64"), np.dtype("float64")]
    assert enforce_signature(CHURN, _as_records(big)).shape == (10_000, 3)
    error = mismatch(CHURN, big.assign(tenure=big["tenure"].astype(float)))
    assert len(error.problems) == 1


@pytest.mark.parametrize("data", [None, 5, "text", b"x", [], {}, object()], ids=repr)
@pytest.mark.parametrize("signature", [CHURN, IMAGE], ids=["columns", "tensor"])
def test_data_that_is_no_input_form_is_an_invalid_argument(data: Any, signature: Signature) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        enforce_signature(signature, data)
    assert not isinstance(caught.value, SignatureError)
    assert caught.value.details["field"] == "data"


def test_ragged_lists_are_an_invalid_argument() -> None:
    for signature in (CHURN, IMAGE):
        with pytest.raises(InvalidArgumentError, match="one length"):
            enforce_signature(signature, [[1, 2, 3, 4], [1, 2]])


# --- enforcement: tensors ----------------------------------------------------------------------


def test_a_matching_tensor_passes_unchanged() -> None:
    values = np.ones((2, 4), dtype=np.float32)
    assert enforce_signature(IMAGE, values) is values


@pytest.mark.parametrize(
    ("values", "got"),
    [
        (np.zeros((2, 5), dtype=np.float32), [2, 5]),
        (np.zeros((2,), dtype=np.float32), [2]),
        (np.zeros((2, 4, 1), dtype=np.float32), [2, 4, 1]),
    ],
)
def test_a_wrong_tensor_shape_is_a_problem(values: np.ndarray, got: list[int]) -> None:
    error = mismatch(IMAGE, values)
    assert error.problems == [
        {"field": "input", "problem": "shape", "expected": [-1, 4], "got": got}
    ]
    assert f"input: got shape {got}, expected [-1, 4]" in error.message


def test_shape_and_dtype_problems_are_reported_together() -> None:
    error = mismatch(IMAGE, np.zeros((3, 5), dtype=np.float64))
    assert [p["problem"] for p in error.problems] == ["shape", "type"]
    assert "input: got float64, expected float32" in error.message


def test_any_size_dimensions_take_any_size() -> None:
    signature = Signature(inputs=TensorSpec("uint8", (-1, -1, 3)))
    assert enforce_signature(signature, np.zeros((1, 7, 3), dtype=np.uint8)).shape == (1, 7, 3)
    assert single(signature, np.zeros((1, 7, 4), dtype=np.uint8))["problem"] == "shape"


def test_lists_are_json_numbers_for_a_tensor() -> None:
    out = enforce_signature(IMAGE, [[0.1, 0.2, 0.3, 1]])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.1, 0.2, 0.3, 1.0]], rtol=1e-6)
    ints = Signature(inputs=TensorSpec("int16", (-1, 2)))
    assert enforce_signature(ints, [[1, 2], [3, 4]]).dtype == np.int16
    assert single(ints, [[1, 2**20]])["got"] == "int values outside the int16 range"
    assert single(ints, [[1.0, 2.0]])["got"] == "float values"
    assert single(IMAGE, [[1, 2, 3, "a"]])["got"] == "string values"
    assert single(ints, [[1, None]])["problem"] == "nulls"


@pytest.mark.parametrize(
    "data",
    [
        pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0], "d": [4.0]}).astype(np.float32),
        pa.table({"a": [1.0], "b": [2.0], "c": [3.0], "d": [4.0]}).cast(
            pa.schema([(k, pa.float32()) for k in "abcd"])
        ),
        [{"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}],
        {"a": [1.0], "b": [2.0], "c": [3.0], "d": [4.0]},
    ],
    ids=["dataframe", "pyarrow", "records", "dict"],
)
def test_tables_become_a_tensor(data: Any) -> None:
    out = enforce_signature(IMAGE, data)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32
    assert out.tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_int_tensors_widen_to_float_but_floats_do_not_narrow_to_int() -> None:
    floats = Signature(inputs=TensorSpec("float64", (-1, 2)))
    out = enforce_signature(floats, np.array([[1, 2]], dtype=np.int32))
    assert out.dtype == np.float64
    assert out.tolist() == [[1.0, 2.0]]
    ints = Signature(inputs=TensorSpec("int64", (-1, 2)))
    assert single(ints, np.array([[1.0, 2.0]]))["got"] == "float64"


# --- to_model_input ----------------------------------------------------------------------------


def test_to_model_input_normalises_without_a_signature() -> None:
    frame = churn_frame()
    assert to_model_input(frame) is frame
    array = np.zeros((2, 2))
    assert to_model_input(array) is array
    pd.testing.assert_frame_equal(to_model_input(_as_records(frame)), frame)
    pd.testing.assert_frame_equal(to_model_input(frame.to_dict("list")), frame)
    pd.testing.assert_frame_equal(to_model_input(pa.Table.from_pandas(frame)), frame)
    assert to_model_input({"a": 1, "b": "x"}).to_dict("records") == [{"a": 1, "b": "x"}]
    listed = to_model_input([[1, 2], [3, 4]])
    assert isinstance(listed, np.ndarray)
    assert listed.dtype == np.int64
    with pytest.raises(InvalidArgumentError) as caught:
        to_model_input(None)
    assert caught.value.details["field"] == "data"
