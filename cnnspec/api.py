"""The public API, the facade over the layers: each pipeline stage as a plain function.

``load`` (text → located document, with extends/use/--set) → ``validate`` (JSON Schema) →
``resolve`` (IR with shapes and counts) → back ends: ``build_model`` (Keras) and the code
emitter. ``compile_spec`` runs the whole front end in one call (the passes of
:mod:`cnnspec.analysis.passes`, the same ``cnnspec validate`` runs). Nothing here imports
TensorFlow until ``build_model`` is called. No module of the package imports this one: it only
re-exports (``CompiledSpec`` lives in :mod:`cnnspec.analysis.compiled`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cnnspec.analysis import passes
from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.analysis.passes import DEFAULT_MAX_PARAMS, compile_doc, compile_spec, compile_text
from cnnspec.errors import Diagnostics
from cnnspec.ir import ModelIR
from cnnspec.spec.compose import load_spec
from cnnspec.spec.loader import SourceDoc
from cnnspec.spec.schema import validate_document

if TYPE_CHECKING:
    import keras

__all__ = [
    "DEFAULT_MAX_PARAMS",
    "CompiledSpec",
    "build_augmentation",
    "build_model",
    "compile_doc",
    "compile_spec",
    "compile_text",
    "generate_code",
    "load",
    "load_keras_application_weights",
    "resolve",
    "validate",
]


def load(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, allow_outside: bool = False
) -> SourceDoc:
    """Stage 1: read a spec file (and its ``extends``/``use`` files), apply overrides."""
    return load_spec(path, overrides, allow_outside=allow_outside)


def validate(doc: SourceDoc, diags: Diagnostics | None = None) -> Diagnostics:
    """Stage 2: JSON Schema validation of the document's sections; raises SpecError with every
    error found. The layer items of ``model`` and ``blocks`` are checked by :func:`resolve` (their
    kinds and parameters come from the layer registry), as :func:`compile_spec` does both."""
    own = diags if diags is not None else Diagnostics()
    doc.schema_checked = False  # asked for the schema check: check even a packaged zoo model
    validate_document(doc, own)
    own.raise_if_errors()
    return own


def resolve(
    doc: SourceDoc, diags: Diagnostics | None = None, *, max_params: int = DEFAULT_MAX_PARAMS
) -> ModelIR:
    """Stage 3: expand blocks/repeat/combinators, infer shapes and counts, check limits."""
    context = passes.Context(max_params=max_params, diags=diags if diags is not None else Diagnostics())
    compiled: CompiledSpec = passes.run_passes(doc, context, (passes.resolve, passes.check_size))
    return compiled.ir


def _compiled(spec: CompiledSpec | str | Path) -> CompiledSpec:
    return spec if isinstance(spec, CompiledSpec) else compile_spec(spec)


def build_model(spec: CompiledSpec | str | Path) -> keras.Model:
    """Back end: the Keras functional model of a spec (imports TensorFlow)."""
    from cnnspec.backends.keras_builder import build_model as build

    return build(_compiled(spec).ir)


def build_augmentation(spec: CompiledSpec | str | Path) -> keras.Sequential | None:
    """The spec's ``augmentation`` section as a Keras Sequential (``None`` when empty)."""
    from cnnspec.backends.keras_builder import build_augmentation as build

    return build(_compiled(spec).ir)


def load_keras_application_weights(
    model: keras.Model, path: str | Path, keras_name: str | None = None
) -> keras.Model:
    """Load the weights file keras.applications downloads for ``weights="imagenet"`` (Keras 2's
    HDF5 layout) into a zoo model, by layer order as Keras does (imports TensorFlow). A file that
    does not fit raises :class:`~cnnspec.backends.weights.WeightsFileError` naming the layer.
    ``keras_name`` (``EfficientNetB0``, or ``efficientnet_b0``; default: the zoo variant the
    model was built as): also load what that function's ImageNet model has beyond the weights
    (EfficientNet B0–B7 rescale their normalized input once more); ``weights: imagenet`` in a
    spec does so by itself."""
    from cnnspec.backends.weights import load_keras_application_weights as load_weights

    return load_weights(model, path, keras_name)


def generate_code(spec: CompiledSpec | str | Path, *, script: bool = False) -> str:
    """Back end: standalone Python source of a spec — the model module, or with ``script=True``
    a complete training program (no TensorFlow needed to generate it)."""
    from cnnspec.backends.python_emitter import generate_code as emit

    return emit(_compiled(spec), script=script).text
