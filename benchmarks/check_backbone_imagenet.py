"""End-to-end check of `weights: imagenet` on a backbone item, offline (run by hand, ~1 min):

    .venv/bin/python benchmarks/check_backbone_imagenet.py

keras.applications.ResNet50(include_top=False) with random weights is saved in Keras 2's HDF5
layout under the exact file name keras.applications downloads for `weights="imagenet"`, in a
temporary `KERAS_HOME/models`. Then examples/backbone/resnet50_features.yaml (at 64×64 input) is
compiled and its transfer plan made and applied, and the backbone's output is compared with
the keras.applications model's on a random batch. Prints the load report, the largest
difference and the time of each step. Nothing is downloaded.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHAPE = (64, 64, 3)


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="keras-home-"))
    os.environ["KERAS_HOME"] = str(home)
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from cnnspec.api import build_model, compile_spec
    from cnnspec.training import transfer, transfer_imagenet, transfer_loads

    def offline(found: transfer_imagenet.ApplicationFile) -> Path:
        raise RuntimeError("this check never downloads")

    keras.utils.set_random_seed(0)
    reference = keras.applications.ResNet50(include_top=False, weights=None, input_shape=SHAPE)
    found = transfer_imagenet.application_file("ResNet50", False, SHAPE)
    (home / "models").mkdir(parents=True)
    with h5py.File(home / "models" / found.name, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, reference)
    print(f"cache: {home / 'models' / found.name}")

    start = time.perf_counter()
    spec = ROOT / "examples" / "backbone" / "resnet50_features.yaml"
    compiled = compile_spec(spec, [f"input.shape=[{', '.join(map(str, SHAPE))}]"])
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    loads = transfer_loads.spec_loads(compiled)
    plans = transfer_loads.plan_loads(build_model(compiled), loads, fetch=offline)
    plan_s = time.perf_counter() - start
    start = time.perf_counter()
    model = build_model(compiled)
    for plan in plans:
        transfer.apply_plan(model, plan)
        print("\n".join(plan.lines()))
    apply_s = time.perf_counter() - start
    body = [node.name for node in compiled.ir.nodes if node.name.startswith("body_")]
    features = keras.Model(model.inputs, model.get_layer(body[-1]).output)
    batch = np.random.default_rng(0).uniform(0, 255, (4, *SHAPE)).astype("float32")
    diff = float(np.max(np.abs(features.predict(batch, verbose=0) - reference.predict(batch, verbose=0))))
    print(
        f"compile {compile_s * 1000:.0f} ms, read + match (throwaway build) {plan_s:.2f} s, "
        f"build + assign {apply_s:.2f} s; max |backbone - keras.applications| = {diff:.3g}"
    )
    return 0 if diff < 1e-3 and all(not p.skipped for p in plans) else 1


if __name__ == "__main__":
    sys.exit(main())
