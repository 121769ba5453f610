"""The ONNX flavor: an ``onnx.ModelProto`` (convert your model first, for example with
``skl2onnx.to_onnx``), run with ONNX Runtime on the CPU.

Saving writes ``model.onnx`` with every tensor embedded (``save_as_external_data=False``);
a model that still points at external data files is refused, so load its data first
(``onnx.load(path)`` does). Embedded protobuf is limited to 2 GiB, so larger models cannot
be saved by this flavor.

Loading reads the file's bytes once and checks them before ONNX Runtime sees anything:
every tensor stored as external data (initializers, sparse initializers and tensors inside
node attributes, recursively through subgraphs and functions) is refused. A location that is
absolute, holds ``..`` or resolves outside the model folder raises
:class:`~loopml.errors.UnsafePathError`; any other external reference raises
:class:`~loopml.errors.InvalidArgumentError`, because this flavor never writes one. The
session is then built from the checked bytes, not from the path, so ONNX Runtime has no
folder to resolve external files against.

The loaded model is an :class:`OnnxModel` (the ``InferenceSession`` and the ``ModelProto``).
The framework is imported only inside functions, by absolute name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from loopml.errors import InvalidArgumentError, MissingDependencyError, UnsafePathError
from loopml.models.flavors._base import Flavor, SavedFlavor
from loopml.storage.paths import join_under

__all__ = ["FLAVOR", "OnnxFlavor", "OnnxModel"]

_MODEL_FILE = "model.onnx"
_PROVIDERS = ["CPUExecutionProvider"]
#: ONNX Runtime's input type names and the numpy dtypes they take
_INPUT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint64)": "uint64",
    "tensor(uint32)": "uint32",
    "tensor(uint16)": "uint16",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def _framework(name: str, extra_package: str, purpose: str) -> ModuleType:
    """The real ``onnx`` / ``onnxruntime`` package, or a MissingDependencyError."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError.for_extra(extra_package, "onnx", purpose) from exc


@cache
def _distribution(import_name: str) -> str:
    """The installed distribution that provides ``import_name`` (``onnxruntime`` or, say,
    ``onnxruntime-gpu``), falling back to the import name when the metadata does not say."""
    found = importlib.metadata.packages_distributions().get(import_name) or []
    return import_name if not found or import_name in found else sorted(found)[0]


@dataclass
class OnnxModel:
    """A loaded ONNX model: the ONNX Runtime session and the checked ``ModelProto``."""

    session: Any
    proto: Any

    def predict(self, data: Any) -> Any:
        """The model's first output for ``data``."""
        return FLAVOR.predict(self, data)

    def predict_proba(self, data: Any) -> Any | None:
        """The model's probability output as a 2-D array, or ``None`` if it has none."""
        return FLAVOR.predict_proba(self, data)


class OnnxFlavor(Flavor):
    """Save / load / predict for ONNX models (embedded data only, ONNX Runtime on CPU)."""

    name = "onnx"
    extra = "onnx"

    def matches(self, model: Any) -> bool:
        if isinstance(model, OnnxModel):
            return True
        return any(
            cls.__module__.split(".")[0] == "onnx" and cls.__name__ == "ModelProto"
            for cls in type(model).__mro__
        )

    def save(self, model: Any, folder: Path) -> SavedFlavor:
        onnx = _framework("onnx", "onnx", "Saving an ONNX model")
        proto = model.proto if isinstance(model, OnnxModel) else model
        if not isinstance(proto, onnx.ModelProto):
            raise InvalidArgumentError(
                f"Not an ONNX model: {type(model).__name__}; convert it to an onnx.ModelProto "
                "first (for example with skl2onnx.to_onnx).",
                model_class=type(model).__name__,
            )
        external = next(_external_tensors(proto), None)
        if external is not None:
            raise InvalidArgumentError(
                f"The ONNX model's tensor {external[0]!r} is stored in an external data file; "
                "load the model with its data (onnx.load(path)) before saving it with loopml, "
                "which embeds every tensor in model.onnx."
            )
        Path(folder).mkdir(parents=True, exist_ok=True)
        onnx.save_model(proto, join_under(folder, _MODEL_FILE), save_as_external_data=False)
        return SavedFlavor(
            framework="onnx",
            framework_version=str(onnx.__version__),
            options={"file": _MODEL_FILE},
            needs_pickle=False,
            requirements=(_distribution("onnx"), _distribution("onnxruntime")),
        )

    def load(self, folder: Path, saved: SavedFlavor, *, trusted: bool) -> OnnxModel:
        path = join_under(folder, str(saved.options.get("file", _MODEL_FILE)))
        onnx = _framework("onnx", "onnx", "Loading an ONNX model")
        ort = _framework("onnxruntime", "onnxruntime", "Loading an ONNX model")
        data = Path(path).read_bytes()
        proto = onnx.load_model_from_string(data)  # never follows external data references
        check_external_data(proto, folder)
        session = ort.InferenceSession(data, providers=_PROVIDERS)
        return OnnxModel(session=session, proto=proto)

    def predict(self, model: Any, data: Any) -> Any:
        import numpy as np

        session = self._session(model)
        first = session.get_outputs()[0].name
        (result,) = session.run([first], self._feed(session, data))
        return np.asarray(result)

    def predict_proba(self, model: Any, data: Any) -> Any | None:
        import numpy as np

        session = self._session(model)
        output = _probability_output(session.get_outputs())
        if output is None:
            return None
        (result,) = session.run([output], self._feed(session, data))
        if isinstance(result, list):  # ZipMap: one {class: probability} dict per row
            if not result:
                return np.zeros((0, 0), dtype=np.float32)
            keys = list(result[0])
            return np.asarray([[row[k] for k in keys] for row in result])
        array = np.asarray(result)
        return array.reshape(-1, 1) if array.ndim == 1 else array

    def wants_dataframe(self, model: Any) -> bool:
        """True for a model with several inputs: each column of the DataFrame feeds the input
        of the same name."""
        return len(self._session(model).get_inputs()) > 1

    def _session(self, model: Any) -> Any:
        """The InferenceSession for a loaded model, a bare session or a ModelProto."""
        if isinstance(model, OnnxModel):
            return model.session
        if self.matches(model):  # an in-memory ModelProto: run it the same way as a load
            ort = _framework("onnxruntime", "onnxruntime", "Running an ONNX model")
            check_external_data(model, None)
            return ort.InferenceSession(model.SerializeToString(), providers=_PROVIDERS)
        return model

    @staticmethod
    def _feed(session: Any, data: Any) -> dict[str, Any]:
        """The input dict for ``session.run``: one array per model input."""
        import numpy as np

        inputs = session.get_inputs()
        if isinstance(data, dict):
            columns = data
        elif len(inputs) > 1 and hasattr(data, "columns"):  # a DataFrame, one column per input
            columns = {name: data[name].to_numpy().reshape(-1, 1) for name in data.columns}
        elif len(inputs) == 1:
            array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            columns = {inputs[0].name: array}
        else:
            names = ", ".join(i.name for i in inputs)
            raise InvalidArgumentError(
                f"This ONNX model has several inputs ({names}); pass a dict or a DataFrame "
                "with one entry per input."
            )
        feed = {}
        for spec in inputs:
            if spec.name not in columns:
                raise InvalidArgumentError(f"Missing input {spec.name!r} for the ONNX model.")
            feed[spec.name] = _cast(np.asarray(columns[spec.name]), spec.name, spec.type)
        return feed


def _cast(array: Any, name: str, onnx_type: str) -> Any:
    """``array`` in the dtype the input wants, where the cast keeps the values' kind
    (int or bool to float, narrower or wider ints); anything else is refused."""
    import numpy as np

    wanted = _INPUT_DTYPES.get(onnx_type)
    if wanted is None or array.dtype == np.dtype(wanted):
        return array
    target = np.dtype(wanted)
    if target.kind == "f" and array.dtype.kind in "biuf":
        return array.astype(target)
    if target.kind in "iu" and array.dtype.kind in "biu":
        return array.astype(target)
    if target.kind == "O" and array.dtype.kind in "OU":
        return array.astype(object)
    raise InvalidArgumentError(
        f"The ONNX model's input {name!r} takes {onnx_type}, which cannot be made from "
        f"{array.dtype} data without changing its values.",
        field=name,
    )


def _probability_output(outputs: list[Any]) -> str | None:
    """The name of the output that holds class probabilities: one (not the first) whose
    name mentions probabilities, or else a second output that is a ZipMap (sequence of maps)."""
    for spec in outputs[1:]:
        if "prob" in spec.name.lower():
            return str(spec.name)
    if len(outputs) > 1 and str(outputs[1].type).startswith("seq(map("):
        return str(outputs[1].name)
    return None


def _external_tensors(proto: Any) -> Iterator[tuple[str, str | None]]:
    """``(tensor name, location)`` for every tensor in the model stored as external data
    (``location`` is ``None`` when the reference has no location entry)."""
    onnx = importlib.import_module("onnx")
    external = onnx.TensorProto.EXTERNAL

    def tensor(t: Any) -> Iterator[tuple[str, str | None]]:
        if t.data_location == external or len(t.external_data):
            entries = {e.key: e.value for e in t.external_data}
            yield t.name, entries.get("location")

    def sparse(s: Any) -> Iterator[tuple[str, str | None]]:
        yield from tensor(s.values)
        yield from tensor(s.indices)

    def attribute(a: Any) -> Iterator[tuple[str, str | None]]:
        if a.HasField("t"):
            yield from tensor(a.t)
        for t in a.tensors:
            yield from tensor(t)
        if a.HasField("sparse_tensor"):
            yield from sparse(a.sparse_tensor)
        for s in a.sparse_tensors:
            yield from sparse(s)
        if a.HasField("g"):
            yield from graph(a.g)
        for g in a.graphs:
            yield from graph(g)

    def nodes(items: Any) -> Iterator[tuple[str, str | None]]:
        for node in items:
            for a in node.attribute:
                yield from attribute(a)

    def graph(g: Any) -> Iterator[tuple[str, str | None]]:
        for t in g.initializer:
            yield from tensor(t)
        for s in g.sparse_initializer:
            yield from sparse(s)
        yield from nodes(g.node)

    yield from graph(proto.graph)
    for function in proto.functions:
        yield from nodes(function.node)


def check_external_data(proto: Any, folder: str | os.PathLike[str] | None) -> None:
    """Refuse a model that stores any tensor as external data.

    A location that is absolute, has a ``..`` segment or resolves outside ``folder`` (when
    given) raises :class:`~loopml.errors.UnsafePathError`, naming the tensor; any other
    external reference raises :class:`~loopml.errors.InvalidArgumentError`.
    """
    inside: list[tuple[str, str | None]] = []
    for name, location in _external_tensors(proto):
        if location is None or location == "":
            inside.append((name, location))
            continue
        normalized = location.replace("\\", "/")
        if (
            os.path.isabs(location)
            or normalized.startswith("/")
            or ".." in normalized.split("/")
            or (len(normalized) > 1 and normalized[1] == ":")
        ):
            raise UnsafePathError(
                f"The ONNX model's tensor {name!r} points at external data {location!r}, "
                "outside the model folder; refusing to load it.",
                field="external_data",
                reason="outside the model folder",
            )
        if folder is not None:
            try:
                join_under(folder, location)
            except UnsafePathError as exc:
                raise UnsafePathError(
                    f"The ONNX model's tensor {name!r} points at external data "
                    f"{location!r}: {exc.message}",
                    field="external_data",
                    reason="unsafe location",
                ) from exc
        inside.append((name, location))
    if inside:
        name, location = inside[0]
        raise InvalidArgumentError(
            f"The ONNX model's tensor {name!r} is stored as external data ({location!r}); "
            "loopml saves ONNX models with every tensor embedded and does not load external "
            "data files.",
            field="external_data",
        )


FLAVOR = OnnxFlavor()
