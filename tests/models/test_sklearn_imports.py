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
