"""Agreement figures for benchmarks/bench_infer.py, as Markdown tables.

- no argument: pixels of cnnspec.training.imagefiles.load_image against TensorFlow's decode +
  bilinear resize (what Keras' folder loader fed training before cnnspec read folders itself),
  over random images of random sizes in every format and colour mode TensorFlow accepts: the
  share of differing pixel values and the largest difference;
- ``RUN``: the run's verified ONNX and TFLite exports against Keras on its whole test split
  (max abs probability difference, top-1 agreement).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from cnnspec.training.imagefiles import load_image
from cnnspec.training.runtime import import_keras

import_keras()
import tensorflow as tf  # noqa: E402

MODES = {"L": 1, "RGB": 3, "RGBA": 4}


def main(images: int = 40) -> None:
    rng = np.random.default_rng(0)
    counts: dict[str, list[int]] = {}
    for _ in range(images):
        h, w = (int(v) for v in rng.integers(3, 70, 2))
        for mode, c in MODES.items():
            array = rng.integers(0, 256, (h, w, c), dtype="uint8")
            image = Image.fromarray(array[..., 0] if c == 1 else array, mode=mode)
            for fmt in ("PNG", "JPEG", "BMP", "GIF"):
                if fmt == "JPEG" and mode == "RGBA":
                    continue
                buffer = io.BytesIO()
                image.save(buffer, format=fmt)
                data = buffer.getvalue()
                for channels in (1, 3, 4):
                    size = tuple(int(s) for s in rng.integers(4, 40, 2))
                    for target in (size, (h, w)):
                        try:
                            decoded = tf.io.decode_image(data, channels=channels, expand_animations=False)
                        except Exception:  # TensorFlow refuses e.g. BMP → 1 channel, GIF → 4
                            continue
                        resized = tf.image.resize(decoded, target).numpy()
                        expected = np.clip(np.round(resized), 0, 255).astype("int64")
                        got, _ = load_image(data, target, channels)
                        diff = np.abs(got.astype("int64") - expected)
                        row = counts.setdefault(f"{fmt} {mode} → {channels}", [0, 0, 0])
                        row[0] += int((diff > 0).sum())
                        row[1] += diff.size
                        row[2] = max(row[2], int(diff.max()))
    print("| file → channels | values differing | largest difference |")
    print("| --- | --- | --- |")
    for key, (differ, total, worst) in sorted(counts.items()):
        print(f"| {key} | {differ:,} of {total:,} ({differ / total:.2%}) | {worst} |")


def exports_against_keras(run: str) -> None:
    from cnnspec.export.runtimes import find_export, open_session, predict_batches
    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.predictions import probabilities
    from cnnspec.reporting.run import load_model, locate
    from cnnspec.training.imagefiles import scale_batch

    found = locate(Path(run))
    model = load_model(found.model_path)
    test = load_test_data(found, model)
    outputs = model.predict(scale_batch(test.x, test.settings.rescale), verbose=0)
    want = probabilities(outputs, found.output_kind())
    integer = bool(np.issubdtype(test.x.dtype, np.integer))  # files scale as integers, arrays not
    print("| export | test images | max abs difference vs Keras | top-1 agreement |")
    print("| --- | --- | --- | --- |")
    for runtime in ("onnx", "tflite"):
        record = find_export(Path(run), runtime)
        x = scale_batch(test.x, record.rescale(integer))
        got = probabilities(predict_batches(open_session(runtime, record.path), x), found.output_kind())
        agree = float(np.mean(got.argmax(1) == want.argmax(1)))
        print(f"| {runtime} | {len(x):,} | {np.max(np.abs(got - want)):.2e} | {agree:.2%} |")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        exports_against_keras(sys.argv[1])
    else:
        main()
