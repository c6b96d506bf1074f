"""The dtypes of an imported weights file's variables against the spec's model, whose layers all
keep float32 variables (float32 and the mixed policies alike; the importer refuses any other
policy by name: :func:`cnnspec.layers.reverse.dtype_policy`), but for the int64 counters a kind
names (:attr:`cnnspec.layers.registry.LayerKind.counters`: normalization's ``count``), which take
any integers.

What Keras does with a saved variable of another dtype decides what import does with it. Keras'
``load_model`` and ``load_weights`` read each ``vars/N`` dataset as numpy has it (a dataset
with the attribute ``dtype: bfloat16`` as bfloat16) and ``Variable.assign`` converts it to the
variable's float32 without a word: float16 and bfloat16 exactly, float64 rounded (and beyond
float32's range to inf), integers and booleans to their float values, complex numbers without
their imaginary parts. Strings, opaque data and a bfloat16 mark on anything but 2-byte opaque
data it cannot read, and refuses the file.

So a file is refused where Keras would refuse it or change what its values are (integers,
booleans, complex numbers, finite float64 values that become inf), and where ``cnnspec build``
(:mod:`cnnspec.training.transfer_read`, numbers of at most 8 bytes) could not read it (float128);
float16 and float32 are taken as they are; float64 is taken with a note where rounding to
float32 changes a value; bfloat16 (which ``build`` does not read) is rewritten as float32,
the same values. h5py and numpy only: no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: The dtype of every variable of a spec's model but the counters (LayerKind.counters).
VARIABLE_DTYPE = "float32"
#: The dtype of a counter (normalization's ``count``).
COUNTER_DTYPE = "int64"
#: The attribute with which Keras marks a bfloat16 dataset (stored as 2-byte opaque data, which
#: HDF5 has no float type for).
_MARK = "dtype"
_BFLOAT16 = "bfloat16"


@dataclass(frozen=True)
class Placed:
    """A layer of the spec's model whose variables the weights file holds in the right number
    and shapes: how a message names it, its group in the file and its variables' keys."""

    what: str
    group: str
    keys: tuple[str, ...]
    #: the keys of the variables the layer keeps as int64 counters (LayerKind.counters)
    counters: tuple[str, ...] = ()


@dataclass
class DtypeCheck:
    """What :func:`check_dtypes` found: the variables refused (each a message part naming the
    layer, the variable and both dtypes), the layers whose float64 values are rounded when
    loaded, and those whose bfloat16 variables were rewritten as float32."""

    refused: list[str] = field(default_factory=list)
    rounded: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)


def check_dtypes(path: Any, layers: Iterable[Placed]) -> DtypeCheck:
    """Check the dtype of each variable of ``layers`` in the weights file at ``path`` against
    the float32 the spec's model keeps (see the module's docstring), rewriting bfloat16
    variables as float32 in place. Only refusals leave the file unchanged: the caller writes
    nothing then."""
    import h5py

    from cnnspec.training.h5checks import kinds_differ

    found = DtypeCheck()
    widen: list[tuple[Any, str]] = []
    with h5py.File(path, "r") as handle:
        for layer in layers:
            variables = handle[layer.group]["vars"]
            rounded = False
            for key in layer.keys:
                dataset = variables[key]
                if key in layer.counters:  # (an int64 counter: any integer Keras assigns as it is)
                    if kinds_differ(dataset.dtype, COUNTER_DTYPE):
                        found.refused.append(
                            f"{layer.what} at {layer.group}: expected variable {key} of dtype "
                            f"{COUNTER_DTYPE} (the layer's count); received {dataset.dtype}"
                        )
                    continue
                verdict = _verdict(dataset)
                if verdict == "widen":
                    widen.append((layer, f"{layer.group}/vars/{key}"))
                elif verdict == "round":
                    rounded = True
                elif verdict is not None:
                    found.refused.append(
                        f"{layer.what} at {layer.group}: expected variable {key} of dtype {VARIABLE_DTYPE}; "
                        f"received {verdict}"
                    )
            if rounded:
                found.rounded.append(layer.what)
    if found.refused or not widen:
        return found
    with h5py.File(path, "r+") as handle:
        for layer, where in widen:
            _as_float32(handle, where)
            if layer.what not in found.widened:
                found.widened.append(layer.what)
    return found


def _verdict(dataset: Any) -> str | None:
    """``None``: Keras loads the dataset's values unchanged (float32, float16); ``"round"``:
    float64 that rounding to float32 changes; ``"widen"``: Keras' bfloat16; else what the
    dataset holds and what Keras would do with it, for the refusal."""
    import numpy as np

    dtype = dataset.dtype
    mark = dataset.attrs.get(_MARK)
    mark = mark.decode("utf-8", "replace") if isinstance(mark, bytes) else mark
    if mark == _BFLOAT16:
        if dtype.kind == "V" and dtype.itemsize == 2:
            return "widen"
        return f"{dtype} marked {_BFLOAT16}, which Keras' load_model cannot read"
    if dtype.kind == "f" and dtype.itemsize in (2, 4):
        return None
    if dtype.kind == "f" and dtype.itemsize == 8:
        values = np.asarray(dataset)
        finite = values[np.isfinite(values)]
        largest = float(np.abs(finite).max()) if finite.size else 0.0
        if largest > float(np.finfo(np.float32).max):
            return (
                f"float64 values beyond float32's range (up to {largest:.3g}), which Keras' load_model "
                "turns into inf"
            )
        with np.errstate(all="ignore"):
            same = np.array_equal(values.astype(np.float32).astype(np.float64), values, equal_nan=True)
        return None if same else "round"
    if dtype.kind in "biu":
        return f"{dtype}, which Keras' load_model converts to float values without a word"
    if dtype.kind == "c":
        return f"{dtype}, whose imaginary parts Keras' load_model drops without a word"
    if dtype.kind == "f":
        return f"{dtype}, which cnnspec build does not read (numbers of at most 8 bytes)"
    return f"{dtype}, which Keras' load_model cannot read as numbers"


def _as_float32(handle: Any, where: str) -> None:
    """Rewrite Keras' bfloat16 dataset at ``where`` as float32, the same values: a bfloat16 is
    the upper 16 bits of a float32 (read in the byte order ml_dtypes writes, the machine's)."""
    import numpy as np

    bits = np.asarray(handle[where]).view(np.uint16)
    values = (bits.astype(np.uint32) << 16).view(np.float32)
    group, key = where.rsplit("/", 1)
    del handle[group][key]
    handle[group].create_dataset(key, data=values)


__all__ = ["VARIABLE_DTYPE", "DtypeCheck", "Placed", "check_dtypes"]
