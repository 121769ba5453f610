"""Loading a scikit-learn model does not drag PyTorch in (skops' walk of scikit-learn would):
a model server worker stays small and starts fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from loopml import models


def test_loading_a_sklearn_model_does_not_import_torch(tmp_path: Path) -> None:
    pytest.importorskip("torch")  # only meaningful where PyTorch is installed
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    models.save(model, tmp_path / "m")
    script = (
        "import sys\n"
        "from loopml import models\n"
        f"m = models.load({str(tmp_path / 'm')!r})\n"
        "assert m.predict([[0.0], [3.0]]).tolist() == [0, 1]\n"
        "print('torch' in sys.modules)\n"
        "import torch\n"  # and PyTorch still imports afterwards
        "print(torch.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "torch"]
