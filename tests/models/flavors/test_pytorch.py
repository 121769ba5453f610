"""The PyTorch flavor: safetensors state dicts, and a pickle fallback that needs trust."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris

from loopml.errors import (
    InvalidArgumentError,
    MissingDependencyError,
    UnsafePathError,
    UntrustedModelError,
)
from loopml.models.flavors._base import SavedFlavor
from loopml.models.flavors.pytorch import DEVICE_ENV, FLAVOR


class MLP(torch.nn.Module):
    """A small classifier that records its constructor arguments for loopml."""

    def __init__(self, n_in: int, hidden: int, n_out: int) -> None:
        super().__init__()
        self.loopml_init_kwargs = {"n_in": n_in, "hidden": hidden, "n_out": n_out}
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out)
        )
        self.register_buffer("scale", torch.ones(n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x * self.scale)


class TiedNet(torch.nn.Module):
    """No constructor arguments; the output layer shares the input layer's weight."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = torch.nn.Linear(4, 4, bias=False)
        self.decode = torch.nn.Linear(4, 4)
        self.decode.weight = self.encode.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(torch.tanh(self.encode(x)))


class NeedsArgs(torch.nn.Module):
    """Its constructor needs an argument and it records none: only a pickle can save it."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class Pair(torch.nn.Module):
    """Returns a tuple; predict uses its first item."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.linear(x)
        return out, out * 2


def _round_trip(model: Any, tmp_path: Path, *, trusted: bool = False) -> tuple[SavedFlavor, Any]:
    """Save, pass the options through JSON as a manifest would, and load."""
    saved = FLAVOR.save(model, tmp_path / "m")
    saved = dataclasses.replace(saved, options=json.loads(json.dumps(saved.options)))
    return saved, FLAVOR.load(tmp_path / "m", saved, trusted=trusted)


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x[::3].astype(np.float32), y[::3]  # 50 rows


@pytest.fixture(scope="module")
def trained(iris: tuple[np.ndarray, np.ndarray]) -> MLP:
    x, y = iris
    torch.manual_seed(0)
    model = MLP(4, 8, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    with torch.no_grad():
        model.scale.mul_(1.5)  # a buffer that differs from the constructor's
    return model


def test_state_dict_round_trip(
    trained: MLP, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, _ = iris
    saved, loaded = _round_trip(trained, tmp_path)

    assert saved.framework == "pytorch"
    assert saved.framework_version == str(torch.__version__)
    assert saved.needs_pickle is False
    assert saved.requirements == ("torch", "safetensors")
    assert saved.options == {
        "format": "state_dict",
        "file": "model.safetensors",
        "class": f"{MLP.__module__}:MLP",
        "init_kwargs": {"n_in": 4, "hidden": 8, "n_out": 3},
        "dtype": "float32",
    }
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.safetensors"]
    assert type(loaded) is MLP
    assert loaded is not trained
    assert loaded.training is False
    expected = FLAVOR.predict(trained, x)
    assert expected.shape == (len(x), 3)
    assert expected.dtype == np.float32
    assert_allclose(FLAVOR.predict(loaded, x), expected, rtol=1e-6)
    assert_allclose(FLAVOR.predict(loaded, x.astype(np.float64)), expected, rtol=1e-6)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    assert_allclose(FLAVOR.predict(loaded, frame), expected, rtol=1e-6)
    assert FLAVOR.predict_proba(loaded, x) is None
    assert FLAVOR.wants_dataframe(loaded) is False


def test_no_argument_class_with_tied_weights(
    iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, _ = iris
    torch.manual_seed(1)
    model = TiedNet()
    saved, loaded = _round_trip(model, tmp_path)

    assert saved.options["init_kwargs"] == {}
    assert loaded.decode.weight is loaded.encode.weight
    assert_allclose(FLAVOR.predict(loaded, x), FLAVOR.predict(model, x), rtol=1e-6)


def test_float64_model_keeps_its_dtype(iris: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, _ = iris
    torch.manual_seed(2)
    model = MLP(4, 5, 2).double()
    saved, loaded = _round_trip(model, tmp_path)

    assert saved.options["dtype"] == "float64"
    assert loaded.layers[0].weight.dtype == torch.float64
    predicted = FLAVOR.predict(loaded, x)
    assert predicted.dtype == np.float64
    assert_allclose(predicted, FLAVOR.predict(model, x), rtol=1e-12)


def test_tuple_output_uses_the_first_item(
    iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, _ = iris
    _, loaded = _round_trip(Pair(), tmp_path)
    first, _ = loaded(torch.from_numpy(x))
    assert_allclose(FLAVOR.predict(loaded, x), first.detach().numpy(), rtol=1e-6)


def test_pickle_fallback_needs_trust(
    monkeypatch: pytest.MonkeyPatch, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, _ = iris
    torch.manual_seed(3)
    model = NeedsArgs(3)
    saved = FLAVOR.save(model, tmp_path / "m")

    assert saved.needs_pickle is True
    assert saved.options == {
        "format": "pickle",
        "file": "model.pt",
        "class": f"{NeedsArgs.__module__}:NeedsArgs",
    }
    assert saved.requirements == ("torch",)
    real_load = torch.load

    def forbidden(*args: Any, **kwargs: Any) -> None:
        pytest.fail("torch.load was called for an untrusted model")

    monkeypatch.setattr(torch, "load", forbidden)
    with pytest.raises(UntrustedModelError, match="trusted=True"):
        FLAVOR.load(tmp_path / "m", saved, trusted=False)

    monkeypatch.setattr(torch, "load", real_load)
    loaded = FLAVOR.load(tmp_path / "m", saved, trusted=True)
    assert type(loaded) is NeedsArgs
    assert_allclose(FLAVOR.predict(loaded, x), FLAVOR.predict(model, x), rtol=1e-6)


class _WritesMarker:
    """Unpickling this runs ``Path.touch`` on the marker path."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_an_untrusted_pickle_is_never_opened(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.pt").write_bytes(pickle.dumps(_WritesMarker(marker)))
    saved = SavedFlavor("pytorch", str(torch.__version__), {"format": "pickle", "file": "model.pt"})
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))

    with pytest.raises(UntrustedModelError):
        FLAVOR.load(folder, saved, trusted=False)
    # a manifest that hides the format still cannot skip the check
    sneaky = SavedFlavor("pytorch", "x", {"format": "state_dict"}, needs_pickle=True)
    with pytest.raises(UntrustedModelError):
        FLAVOR.load(folder, sneaky, trusted=False)
    assert not marker.exists()


def test_a_manifest_cannot_point_outside_the_folder(trained: MLP, tmp_path: Path) -> None:
    saved = FLAVOR.save(trained, tmp_path / "m")
    (tmp_path / "outside.safetensors").write_bytes(
        (tmp_path / "m" / "model.safetensors").read_bytes()
    )

    def load(**options: Any) -> Any:
        changed = dataclasses.replace(saved, options={**saved.options, **options})
        return FLAVOR.load(tmp_path / "m", changed, trusted=True)

    with pytest.raises(UnsafePathError):
        load(file="../outside.safetensors")
    with pytest.raises(UnsafePathError):
        load(file=str(tmp_path / "outside.safetensors"))
    with pytest.raises(InvalidArgumentError, match=r"not a torch\.nn\.Module"):
        load(**{"class": "collections:OrderedDict"})
    with pytest.raises(InvalidArgumentError, match="Invalid model class"):
        load(**{"class": "os.system('echo hi')"})
    with pytest.raises(InvalidArgumentError, match="Cannot import"):
        load(**{"class": "loopml_no_such_module:Model"})
    with pytest.raises(InvalidArgumentError, match="dtype"):
        load(dtype="Tensor")
    with pytest.raises(InvalidArgumentError, match="init_kwargs"):
        load(init_kwargs=[1, 2])
    with pytest.raises(InvalidArgumentError, match="format"):
        load(format="torchscript")


def test_init_kwargs_must_be_json(tmp_path: Path) -> None:
    model = MLP(4, 2, 2)
    model.loopml_init_kwargs = {"n_in": 4, "hidden": (2,), "n_out": 2}
    with pytest.raises(InvalidArgumentError, match="loopml_init_kwargs"):
        FLAVOR.save(model, tmp_path / "m")


def test_a_class_defined_in_a_function_cannot_be_saved(tmp_path: Path) -> None:
    class Local(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(InvalidArgumentError, match="module level"):
        FLAVOR.save(Local(), tmp_path / "m")


def test_device_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    trained: MLP,
    iris: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    x, _ = iris
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    _, loaded = _round_trip(trained, tmp_path)
    assert loaded.layers[0].weight.device == torch.device("cpu")
    assert_allclose(FLAVOR.predict(loaded, x), FLAVOR.predict(trained, x), rtol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this host)")
def test_predict_on_cuda(trained: MLP, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, _ = iris
    _, loaded = _round_trip(trained, tmp_path)
    on_gpu = FLAVOR.to_device(loaded, "cuda")
    assert next(on_gpu.parameters()).is_cuda
    predicted = FLAVOR.predict(on_gpu, x)
    assert isinstance(predicted, np.ndarray)
    assert_allclose(predicted, FLAVOR.predict(trained, x), rtol=1e-4, atol=1e-5)


def test_matches(trained: MLP) -> None:
    assert FLAVOR.matches(trained)
    assert FLAVOR.matches(torch.nn.Linear(2, 2))
    assert not FLAVOR.matches(torch.zeros(2))
    assert not FLAVOR.matches(object())

    class Module:  # same name, different package
        pass

    assert not FLAVOR.matches(Module())
    assert FLAVOR.name == "pytorch"
    assert FLAVOR.extra == "pytorch"


def test_matches_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from loopml.models.flavors.pytorch import FLAVOR\n"
        "assert not FLAVOR.matches(object())\n"
        "loaded = [m for m in ('torch', 'safetensors') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_missing_torch_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, trained: MLP, tmp_path: Path
) -> None:
    saved = FLAVOR.save(trained, tmp_path / "m")
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(MissingDependencyError, match=r"loopml\[pytorch\]") as info:
        FLAVOR.load(tmp_path / "m", saved, trusted=False)
    assert info.value.details == {"package": "safetensors", "extra": "pytorch"}

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"loopml\[pytorch\]") as info:
        FLAVOR.save(trained, tmp_path / "again")
    assert info.value.details == {"package": "torch", "extra": "pytorch"}
    with pytest.raises(MissingDependencyError, match=r"loopml\[pytorch\]"):
        FLAVOR.load(tmp_path / "m", saved, trusted=False)
