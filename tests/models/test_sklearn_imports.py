"""Loading a scikit-learn model does not drag PyTorch in (skops' walk of scikit-learn would):
a model server worker stays small and starts fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from loopml import models
from loopml.models.flavors.sklearn import is_public_estimator


def _load_in_a_new_process(tmp_path: Path, then: str) -> str:
    """Save a small model, load it and predict in a fresh interpreter, run ``then`` there;
    what it printed."""
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    models.save(model, tmp_path / "m")
    script = (
        "import sys\n"
        "from loopml import models\n"
        f"m = models.load({str(tmp_path / 'm')!r})\n"
        "assert m.predict([[0.0], [3.0]]).tolist() == [0, 1]\n"
    ) + then
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_loading_a_sklearn_model_does_not_import_torch(tmp_path: Path) -> None:
    pytest.importorskip("torch")  # only meaningful where PyTorch is installed
    then = (
        "print('torch' in sys.modules)\n"
        "import torch\n"  # and PyTorch still imports afterwards
        "print(torch.__name__)\n"
    )
    assert _load_in_a_new_process(tmp_path, then).split() == ["False", "torch"]


def test_loading_a_sklearn_model_does_not_import_all_of_scikit_learn(tmp_path: Path) -> None:
    """skops' list of every estimator imports every scikit-learn module (seconds, ~190 MB);
    loopml asks about each type in the file instead."""
    then = (
        "print(sorted(n for n in ('sklearn.gaussian_process', 'sklearn.semi_supervised',\n"
        "    'sklearn.cross_decomposition', 'sklearn.utils._testing') if n in sys.modules))\n"
        "import sklearn.utils\n"
        "print(sklearn.utils.all_estimators.__module__)\n"  # put back after skops' import
    )
    printed = _load_in_a_new_process(tmp_path, then)
    assert printed.split("\n")[:2] == ["[]", "sklearn.utils.discovery"]


def test_every_estimator_skops_trusts_is_a_public_estimator() -> None:
    """The per-type question gives what skops' own list would: every estimator that
    ``all_estimators`` finds passes, and types it would not list do not."""
    from sklearn.utils import all_estimators
    from skops.io._utils import get_type_name

    names = [get_type_name(cls) for _, cls in all_estimators()]
    assert len(names) > 150
    assert [n for n in names if not is_public_estimator(n)] == []
    for name in (
        "sklearn.base.BaseEstimator",  # not an estimator itself
        "sklearn.linear_model._base.LinearModel",  # abstract
        "sklearn.utils._testing.MinimalClassifier",  # not exported by a public module
        "sklearn.tree._tree.Tree",  # not an estimator (checked apart: CHECKED_TYPES)
        "sklearn.linear_model._logistic.np",  # a module, not a class
        "sklearn.linear_model._logistic._Secret",
        "sklearn.linear_model.__init__.LogisticRegression",
        "sklearn.experimental.enable_halving_search_cv.HalvingGridSearchCV",
        "sklearn.LogisticRegression",
        "sklearn..LogisticRegression",
        "sklearn",
        "",
        "os.system",
        "builtins.eval",
        "tests.models.test_safety.Doubler",
    ):
        assert not is_public_estimator(name), name
    for not_a_name in (None, 3, b"sklearn.pipeline.Pipeline", ["sklearn.pipeline.Pipeline"]):
        assert not is_public_estimator(not_a_name)  # type: ignore[arg-type]
    assert is_public_estimator("sklearn.linear_model._logistic.LogisticRegression")
    assert is_public_estimator("sklearn.feature_extraction.text.TfidfVectorizer")


def test_skops_ufunc_lists_are_the_ones_skops_makes(tmp_path: Path) -> None:
    """loopml hands skops a faster ``get_public_type_names`` for its import: the lists skops
    then holds are the ones its own function gives, and its own is put back."""
    then = (
        "import numpy as np, scipy.special\n"
        "from skops.io import _trusted_types as t, _utils as u\n"
        "from skops.utils._fixes import get_scipy_ufunc_wrapper_type\n"
        "own = u.get_public_type_names\n"
        "print(own.__module__, type(u.__loader__).__name__, u.__spec__.loader is u.__loader__)\n"
        "scipy_names = set(own(scipy.special, np.ufunc))\n"
        "wrapper = get_scipy_ufunc_wrapper_type()\n"
        "if wrapper is not None:\n"
        "    scipy_names |= set(own(scipy.special, wrapper))\n"
        "print(sorted(scipy_names) == sorted(t.SCIPY_UFUNC_TYPE_NAMES), len(scipy_names))\n"
        "numpy_names = own(np, np.ufunc)\n"
        "print(numpy_names == t.NUMPY_UFUNC_TYPE_NAMES, len(numpy_names))\n"
    )
    lines = _load_in_a_new_process(tmp_path, then).split("\n")
    assert lines[0] == "skops.io._utils SourceFileLoader True"  # its own, put back
    same_scipy, scipy_count = lines[1].split()
    same_numpy, numpy_count = lines[2].split()
    assert (same_scipy, same_numpy) == ("True", "True")
    assert int(scipy_count) > 100
    assert int(numpy_count) > 50


class _Anonymous:
    """Like a ufunc: no ``__module__`` of its own, so skops looks for it in every module."""

    __module__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        self.__name__ = name


def test_public_type_names_answers_as_skops_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-pass search names each object after the first module that has it, as skops'
    ``whichmodule`` does: past modules with a module ``__getattr__``, objects in
    ``sys.modules`` that are not modules, another object under the same name, and an object
    that no module holds under its name."""
    import types

    import numpy as np
    import scipy.special
    from skops.io._utils import get_public_type_names, whichmodule

    from loopml.models.flavors._skops_import import public_type_names

    alpha, beta, gamma, delta, omega = (
        _Anonymous(n) for n in ("alpha", "beta", "gamma", "delta", "omega")
    )

    def module(name: str, **attrs: object) -> types.ModuleType:
        made = types.ModuleType(name)
        vars(made).update(attrs)
        monkeypatch.setitem(sys.modules, name, made)
        return made

    module("loopml_probe.other", delta=_Anonymous("delta"))  # same name, another object
    module("loopml_probe.first", alpha=alpha)
    module("loopml_probe.lazy", __getattr__=lambda n: {"beta": beta}[n] if n == "beta" else 0)
    monkeypatch.setitem(sys.modules, "loopml_probe.namespace", types.SimpleNamespace(gamma=gamma))
    monkeypatch.setitem(sys.modules, "loopml_probe.gone", None)
    source = module(
        "loopml_probe.source",
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        delta=delta,
        eps=omega,  # held under another name: found in no module
        number=3,
        named=_Anonymous("named"),
    )
    source.named.__class__ = type("Named", (_Anonymous,), {"__module__": "loopml_probe.mod"})
    expected = get_public_type_names(source, _Anonymous)
    assert public_type_names(source, _Anonymous, whichmodule) == expected
    assert expected == [
        "loopml_probe.first.alpha",
        "loopml_probe.lazy.beta",
        "loopml_probe.mod.named",
        "loopml_probe.namespace.gamma",
        "loopml_probe.source.delta",
    ]
    for real in (scipy.special, np):  # and on this process's own modules
        found = public_type_names(real, np.ufunc, whichmodule)
        assert found == get_public_type_names(real, np.ufunc)
        assert found
