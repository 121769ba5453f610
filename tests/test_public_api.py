"""The curated public API: exact, importable without I/O or heavy imports."""

from __future__ import annotations

import subprocess
import sys
import types

import loopml


def test_all_is_exact_and_sorted() -> None:
    public = {
        name
        for name, value in vars(loopml).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    lazy = set(loopml._LAZY_FUNCTIONS)  # provided on first use, to keep the import light
    assert set(loopml.__all__) - {"__version__"} == public | lazy
    assert loopml.__all__ == sorted(loopml.__all__)


def test_import_is_light() -> None:
    code = (
        "import sys, loopml\n"
        "heavy = {'sqlalchemy', 'alembic', 'fsspec', 'rich', 'typer', 'sklearn', 'numpy', "
        "'psutil', 'blake3'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_error_codes_round_trip() -> None:
    from loopml import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, errors.LoopmlError):
            assert errors.error_class_for_code(cls.code) is cls
    err = errors.ParamConflictError("x", key="lr")
    assert err.to_dict() == {
        "error_code": "PARAM_CONFLICT",
        "message": "x",
        "details": {"key": "lr"},
    }
    assert err.http_status == 409


def test_data_api_loads_numpy_and_pyarrow_only_for_tables() -> None:
    code = (
        "import sys, loopml.data\n"
        "print(sorted({'numpy', 'pyarrow', 'yaml'} & set(sys.modules)))\n"
        "loopml.data.Rules\n"
        "print(sorted({'numpy', 'pyarrow', 'yaml'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "['numpy', 'pyarrow', 'yaml']"]
    import loopml.data

    assert sorted(loopml.data.__all__) == loopml.data.__all__
    for name in loopml.data.__all__:
        assert getattr(loopml.data, name) is not None
