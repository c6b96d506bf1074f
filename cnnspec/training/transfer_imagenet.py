"""``imagenet``: the file keras.applications would fetch for a zoo model (:func:`application_file`,
found without filling the model it builds), looked up in Keras' cache (:func:`keras_models_dir`)
and fetched by Keras only where the caller allows it (:func:`imagenet_weights_file`); offline, a
located error names the file and the cache path.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnspec.errors import UsageError
from cnnspec.spec.weights import WeightsSource
from cnnspec.training.transfer_read import first_line


def keras_models_dir() -> Path:
    """Where Keras keeps keras.applications' weight files (``$KERAS_HOME/models``)."""
    from cnnspec.training.data_sources import keras_cache_dir

    return keras_cache_dir().parent / "models"


@dataclass(frozen=True)
class ApplicationFile:
    """The file keras.applications would fetch for ``weights='imagenet'``."""

    name: str
    origin: str
    file_hash: str | None


class _Intercepted(Exception):
    def __init__(self, found: ApplicationFile) -> None:
        super().__init__(found.name)
        self.found = found


@contextlib.contextmanager
def _unfilled_weights() -> Iterator[None]:
    """Keras builds the models made inside with each weight's shape and dtype only, never filled
    from its initializer: keras.applications builds its whole model before it asks for the file,
    and :func:`application_file` never reads those weights (filling them was most of its time:
    EfficientNetB0 1.3 s → 0.4 s of CPU, VGG16's 138 M weights far more)."""
    import keras
    from keras.src.backend.common import global_state

    # Keras keeps such weights in a list to fill at the exit of the next stateless scope that
    # fills its own (one runs for each symbolic op a model built later may call): the list is
    # put back as it was, so the model made here is dropped, never filled.
    pending = list(global_state.get_global_attribute("uninitialized_variables", None) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)


@functools.cache  # it builds keras.applications' model: once per process (search trials)
def application_file(keras_name: str, include_top: bool, input_shape: tuple[int, ...]) -> ApplicationFile:
    """Ask keras.applications which file it would download, without downloading: its
    ``get_file`` call is intercepted (the file name depends on the function, ``include_top``
    and, for some families, the input size)."""
    import keras
    from keras.src.utils import file_utils

    def intercept(*args: Any, **kwargs: Any) -> Any:
        names = ("fname", "origin")
        given = {**dict(zip(names, args, strict=False)), **kwargs}
        raise _Intercepted(
            ApplicationFile(str(given["fname"]), str(given.get("origin")), given.get("file_hash"))
        )

    constructor = getattr(keras.applications, keras_name)
    real = file_utils.get_file
    file_utils.get_file = intercept
    try:
        # The input size first: MobileNet's files differ by it, with the top too (…_1.0_96.h5).
        # A family whose top takes only its default size refuses it; its weights fit any size
        # (pooling before the top), so the default size's file is the one to load.
        with warnings.catch_warnings(), _unfilled_weights():  # (Keras' notes on sizes it has no file for)
            warnings.simplefilter("ignore")
            refused: ValueError | None = None
            for shape in (tuple(input_shape), None) if include_top else (tuple(input_shape),):
                try:
                    constructor(include_top=include_top, weights="imagenet", input_shape=shape)
                except ValueError as exc:
                    # the first refusal is the one about this model's input (the default
                    # size's is only tried for it); without the top there is no other size
                    refused = refused or exc
            if refused is not None:
                raise refused
    except _Intercepted as hit:
        return hit.found
    finally:
        file_utils.get_file = real
    raise UsageError(f"keras.applications.{keras_name} has no ImageNet weights to download")


def download(found: ApplicationFile) -> Path:
    """Fetch the file into Keras' cache with Keras (tests replace this: they never download)."""
    from keras.src.utils import file_utils

    return Path(
        file_utils.get_file(found.name, found.origin, cache_subdir="models", file_hash=found.file_hash)
    )


def imagenet_weights_file(
    source: WeightsSource,
    keras_name: str,
    include_top: bool,
    input_shape: tuple[int, ...],
    fetch: Callable[[ApplicationFile], Path] | None = None,
) -> Path:
    """The cached keras.applications file for this zoo model, fetched by Keras when missing; a
    failed fetch (offline) is an error naming the file, its URL and the cache folder."""
    try:
        found = application_file(keras_name, include_top, tuple(input_shape))
    except ValueError as exc:  # keras.applications refuses the input shape for its weights
        raise source.fail(
            f"keras.applications.{keras_name} has no ImageNet weights for this model: "
            f"{first_line(exc)} (input {list(input_shape)})",
            "give the model an input keras.applications takes with ImageNet weights (input.shape; "
            "most families want at least 32×32), or leave out `weights: imagenet` and train from scratch",
        ) from None
    cached = keras_models_dir() / found.name
    if cached.is_file():
        return cached
    try:
        return (fetch or download)(found)
    except Exception as exc:  # Keras raises a plain Exception ("URL fetch failure") offline
        reason = first_line(exc)
        raise source.fail(
            f"expected the ImageNet weights {found.name} in Keras' cache or downloadable; the download "
            f"failed: {reason}",
            f"download on a machine with network access and place: {found.origin} → {cached}",
        ) from None
