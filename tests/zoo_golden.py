"""keras.applications' side of the zoo parity test, recorded as a golden fixture.

Building every keras.applications model costs as much CPU as building every zoo model, and its
answer only changes when Keras does. So :func:`fingerprint` of each
``keras.applications.<keras_name>(include_top=True, weights=None)`` is committed in
``tests/fixtures/zoo/keras_applications.json`` with the Keras version it came from, and
``tests/test_zoo_parity.py`` builds only the zoo's models against it.

Regenerate (after a Keras upgrade, or for a new family)::

    make zoo-golden          # python -m tests.zoo_golden write
    make zoo-golden-check    # python -m tests.zoo_golden check: rebuilds Keras' side, compares

The fingerprint is JSON: counts by Keras class, weight shapes in ``model.weights`` order (the
order ImageNet weight files load in, written ``3x3x3x32``), and the multiset of layer
configurations without names, each configuration written once in a table the variants share.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "zoo" / "keras_applications.json"


def _canonical(value: Any) -> Any:
    """Config values as Keras spells them either way: 6 and 6.0, (1, 1) and [1, 1]."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return repr(value)


def signature(layer: Any) -> str:
    """A layer's class and configuration without its name, as one canonical JSON text."""
    config = {k: v for k, v in layer.get_config().items() if k not in ("name", "trainable", "dtype")}
    # The channel axis of a rank-4 tensor, spelt 3 or -1 (Normalization keeps a list: [3]).
    if config.get("axis") == 3:
        config["axis"] = -1
    elif config.get("axis") in ([3], (3,)):
        config["axis"] = [-1]
    return json.dumps([type(layer).__name__, _canonical(config)], sort_keys=True)


def fingerprint(model: Any) -> dict[str, Any]:
    """What the zoo format promises to equal, cheap to compute on a built model (no inference)."""
    return {
        "params": model.count_params(),
        "trainable": sum(math.prod(w.shape) for w in model.trainable_weights),
        "non_trainable": sum(math.prod(w.shape) for w in model.non_trainable_weights),
        "output_shape": [d for d in model.output.shape],
        "layers": len(model.layers),
        "classes": dict(sorted(Counter(type(layer).__name__ for layer in model.layers).items())),
        "weight_shapes": [shape_text(w.shape) for w in model.weights],
        "configs": dict(sorted(Counter(signature(layer) for layer in model.layers[1:]).items())),
    }


def shape_text(shape: Any) -> str:
    """A weight's shape as the fingerprint writes it: ``3x3x3x32`` (``scalar`` for none)."""
    return "x".join(str(d) for d in shape) or "scalar"


def keras_fingerprints(names: dict[str, str]) -> dict[str, dict[str, Any]]:
    """variant → keras_name: each keras.applications model built (one at a time) and fingerprinted."""
    import keras

    found = {}
    for name, keras_name in names.items():
        keras.backend.clear_session()
        model = getattr(keras.applications, keras_name)(include_top=True, weights=None)
        found[name] = {"keras_name": keras_name, **fingerprint(model)}
        del model
    keras.backend.clear_session()
    return found


def dump(prints: dict[str, dict[str, Any]], keras_version: str) -> str:
    """The fixture's text: configurations in one shared table, each variant counting by index."""
    table = sorted({sig for p in prints.values() for sig in p["configs"]})
    index = {sig: i for i, sig in enumerate(table)}
    variants = {
        name: {**p, "configs": {str(index[sig]): n for sig, n in p["configs"].items()}}
        for name, p in prints.items()
    }
    return json.dumps({"keras": keras_version, "configs": table, "variants": variants}, indent=0) + "\n"


def load(path: Path = GOLDEN) -> tuple[str, dict[str, dict[str, Any]]]:
    """The committed fixture: (Keras version, variant → fingerprint as :func:`fingerprint` gives)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    table = data["configs"]
    prints = {
        name: {**p, "configs": {table[int(i)]: n for i, n in p["configs"].items()}}
        for name, p in data["variants"].items()
    }
    return data["keras"], prints


def main(argv: list[str]) -> int:
    """``write``: rebuild Keras' side and rewrite the fixture; ``check``: rebuild and compare."""
    import keras

    from cnnspec.spec.zoo import variants

    mode = argv[0] if argv else "check"
    prints = keras_fingerprints({name: v.keras_name for name, v in variants().items()})
    text = dump(prints, keras.__version__)
    if mode == "write":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
        print(f"wrote {GOLDEN} ({len(prints)} variants, Keras {keras.__version__})")
        return 0
    from tests.test_zoo_cut_ends import keras_table_mismatches

    # the cut points' table of Keras' block ends (tests/test_zoo_cut_ends.py), rebuilt alike
    wrong = keras_table_mismatches()
    if wrong:
        print(
            f"tests/test_zoo_cut_ends.py's KERAS_BLOCK_ENDS is stale for: {', '.join(wrong)}", file=sys.stderr
        )
    if GOLDEN.exists() and GOLDEN.read_text(encoding="utf-8") == text:
        print(f"{GOLDEN} is up to date ({len(prints)} variants, Keras {keras.__version__})")
        return 1 if wrong else 0
    print(f"{GOLDEN} is stale: run `make zoo-golden`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
