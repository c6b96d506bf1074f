"""`cnnspec import` of Keras' transfer-learning pattern: a keras.applications body nested in a
model (cnnspec/importer/nested.py, cnnspec/importer/backbones.py).

For each family: keras.applications built with ``weights=None`` and ``include_top=False`` at a
small input, frozen, called with ``training=False``, then a new head (a global average pool
unless the body pools itself, and a 3-unit softmax); saved as ``.keras``. Then, each in its own
cold process, ``cnnspec import MODEL.keras -o SPEC --weights`` (timed) and ``cnnspec build SPEC``;
the built model and the source answer the same seeded batch (max absolute difference). Reports
the spec's lines, whether it is a zoo ``backbone`` item (and with which vars), and the
difference.

Run by hand (about 3 minutes on 2 cores):

    .venv/bin/python benchmarks/bench_import_nested.py [--families ResNet50 ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from _common import CNNSPEC, write_json

#: (keras.applications function, input side, pooling, its keyword arguments)
FAMILIES: dict[str, tuple[str, int, str | None, dict[str, Any]]] = {
    "ResNet50": ("ResNet50", 64, None, {}),
    "ResNet50V2": ("ResNet50V2", 64, "avg", {}),
    "EfficientNetB0": ("EfficientNetB0", 64, None, {}),
    "EfficientNetV2B0": ("EfficientNetV2B0", 64, None, {}),
    "DenseNet121": ("DenseNet121", 64, "max", {}),
    "Xception": ("Xception", 71, None, {}),
    "InceptionV3": ("InceptionV3", 75, None, {}),
    "VGG16": ("VGG16", 32, None, {}),
    "MobileNet": ("MobileNet", 64, None, {}),
    "MobileNetV2": ("MobileNetV2", 96, None, {}),
    "MobileNetV2 alpha 0.5": ("MobileNetV2", 96, None, {"alpha": 0.5}),
    "MobileNetV3Small": ("MobileNetV3Small", 64, None, {}),
}


def source_model(function: str, side: int, pooling: str | None, extra: dict[str, Any]) -> Any:
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    base = getattr(keras.applications, function)(
        include_top=False, weights=None, input_shape=(side, side, 3), pooling=pooling, **extra
    )
    base.trainable = False
    inputs = keras.Input((side, side, 3))
    x = base(inputs, training=False)
    if pooling is None:
        x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def measure(name: str, work: Path) -> dict[str, Any]:
    import keras
    import numpy as np

    function, side, pooling, extra = FAMILIES[name]
    source = source_model(function, side, pooling, extra)
    stem = name.replace(" ", "_").replace(".", "")
    model_file, spec = work / f"{stem}.keras", work / f"{stem}.yaml"
    source.save(model_file)
    start = time.perf_counter()
    imported = subprocess.run(
        [CNNSPEC, "import", str(model_file), "-o", str(spec), "--weights", "--force"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if imported.returncode:
        return {"family": name, "error": imported.stdout[-400:] + imported.stderr[-400:]}
    text = spec.read_text(encoding="utf-8")
    backbone = next((line.strip() for line in text.splitlines() if "backbone:" in line), None)
    built_file = work / f"{stem}_built.keras"
    built = subprocess.run(
        [CNNSPEC, "build", str(spec), "-o", str(built_file)], capture_output=True, text=True
    )
    if built.returncode:
        return {"family": name, "error": built.stdout[-400:] + built.stderr[-400:]}
    rebuilt = keras.saving.load_model(built_file, safe_mode=True)
    batch = np.random.default_rng(0).uniform(0, 255, size=(2, side, side, 3)).astype("float32")
    difference = float(np.abs(source.predict(batch, verbose=0) - rebuilt.predict(batch, verbose=0)).max())
    return {
        "family": name,
        "source_layers": len(source.layers[1].layers) + len(source.layers) - 1,
        "import_s": round(seconds, 2),
        "spec_lines": len(text.splitlines()),
        "backbone": backbone,
        "max_abs_difference": difference,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnspec-nested-") as folder:
        for name in args.families:
            row = measure(name, Path(folder))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| family | source layers | import s | spec lines | written as | max abs difference |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for row in rows:
        if "error" in row:
            print(f"| {row['family']} | | | | error | |")
            continue
        written = f"`{row['backbone'].removeprefix('- ')}`" if row["backbone"] else "in line"
        print(
            f"| {row['family']} | {row['source_layers']} | {row['import_s']} | {row['spec_lines']} | "
            f"{written} | {row['max_abs_difference']:g} |"
        )
    if args.json is not None:
        write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    main()
