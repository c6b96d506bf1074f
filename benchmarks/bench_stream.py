"""Streamed image folders (issue 20): memory, throughput and the cost of the bad-file check.

Generates a folder of PNGs (128×128×3, two classes, smooth random images: never downloaded;
kept in ``--folder`` between runs) and measures, each in a fresh child process:

- ``rss``: peak RSS (``VmHWM``) of one training epoch of a tiny CNN on the folder, *streamed*
  (``cnnspec.training.stream``: file list → shuffle → parallel decode → batch → prefetch) and
  *in memory* (every image decoded into one uint8 array first, as the folder reader did before
  issue 20), at each size of ``--sizes`` (the first N files); the baseline is a child that
  imports TensorFlow and builds the model but reads no data;
- ``throughput``: images/s of the streamed pipeline alone (no model) against ``model.fit`` of
  specs/resnet.yaml on the same stream, at 32×32 and 128×128 (``headroom`` = pipeline /
  training: above 1 the model, not the pipeline, sets the pace);
- ``header_check``: seconds of :func:`cnnspec.training.badfiles.check_files` over the whole
  folder against one streamed epoch of the pipeline alone and of the tiny CNN.

Run by hand (the full run generates 20,000 files, ≈1.1 GB, and takes ~15 minutes on 2 cores):

    .venv/bin/python benchmarks/bench_stream.py [--sizes 2000 20000] [--folder /tmp/cnnspec-stream]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZE = 128
TINY = """\
cnnspec: 1
name: tiny_stream
input: {shape: [128, 128, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, strides: 4, activation: relu}
  - global_avg_pool2d
  - dense: {units: 2, activation: softmax}
"""


def generate(folder: Path, count: int) -> list[Path]:
    """``count`` PNGs in two class folders (made once; smooth noise, so they compress like photos)."""
    from PIL import Image

    files = [folder / ("a" if i % 2 else "b") / f"{i:06d}.png" for i in range(count)]
    missing = [f for f in files if not f.is_file()]
    rng = np.random.default_rng(0)
    for path in missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 256, (16, 16, 3), dtype="uint8")
        Image.fromarray(small).resize((SIZE, SIZE), Image.BILINEAR).save(path)
    return files


def peak_rss_mb() -> float:
    """This process's peak resident set size (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _files(folder: Path, count: int, size: int) -> tuple[Any, np.ndarray]:
    from cnnspec.training.filelist import ImageFiles, index_folder

    listing = index_folder(folder)
    order = np.sort(np.random.default_rng(1).permutation(len(listing.paths))[:count])
    files = ImageFiles([listing.paths[i] for i in order], (size, size), 3)
    return files, listing.labels[order]


def _model(spec: str | Path, size: int) -> Any:
    from cnnspec.api import compile_spec, compile_text
    from cnnspec.backends.keras_builder import build_model

    shape = [f"input.shape=[{size}, {size}, 3]"]
    compiled = compile_spec(spec, shape) if isinstance(spec, Path) else compile_text(spec, overrides=shape)
    model = build_model(compiled.ir)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def child_rss(folder: Path, count: int, mode: str) -> dict[str, Any]:
    """One epoch of the tiny CNN: streamed, in memory, or no data at all (the baseline)."""
    from cnnspec.training.pipeline import PipelineSettings, make_dataset

    settings = PipelineSettings(batch_size=32, rescale=1 / 255)
    model = _model(TINY, SIZE)
    files, y = _files(folder, count, SIZE)
    start = time.perf_counter()
    if mode == "baseline":
        return {"peak_rss_mb": peak_rss_mb(), "seconds": 0.0}
    x = files if mode == "streamed" else np.asarray(files)  # the whole folder as one array
    model.fit(make_dataset(x, y, settings, training=True, seed=0), epochs=1, verbose=0)
    return {"peak_rss_mb": peak_rss_mb(), "seconds": time.perf_counter() - start}


def child_throughput(folder: Path, count: int, size: int, steps: int) -> dict[str, Any]:
    """Pipeline-alone images/s and resnet.yaml training images/s on the same stream."""
    from cnnspec.training.filelist import ImageFiles
    from cnnspec.training.pipeline import PipelineSettings, make_dataset

    settings = PipelineSettings(batch_size=32, rescale=1 / 255)
    files, y = _files(folder, count, size)
    dataset = make_dataset(files, y, settings, training=True, seed=0, repeat=True)
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    start = time.perf_counter()
    for _ in range(steps * 4):
        next(iterator)
    pipeline = steps * 4 * 32 / (time.perf_counter() - start)
    # the same images decoded into memory first: what training costs without the stream
    in_memory = make_dataset(np.asarray(files), y, settings, training=True, seed=0, repeat=True)
    # data.cache: memory — decoded once, then read back from tf.data's cache
    cached_files = ImageFiles(files.paths, files.size, files.channels, cache="memory")
    cached = make_dataset(cached_files, y, settings, training=True, seed=0, repeat=True)
    model = _model(ROOT / "specs" / "resnet.yaml", size)
    model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)  # traces the graph
    # one pass over the files (and a little more) fills the cache before it is timed
    filling = iter(cached)
    for _ in range(-(-len(files.paths) // 32) + 2):
        next(filling)
    model.fit(cached, steps_per_epoch=3, epochs=1, verbose=0)
    rates: dict[str, list[float]] = {"streamed": [], "in_memory": [], "cached": []}
    for _ in range(2):  # alternate, so the machine's changing load hits all alike
        for name, data in (("streamed", dataset), ("in_memory", in_memory), ("cached", cached)):
            start = time.perf_counter()
            model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
            rates[name].append(steps * 32 / (time.perf_counter() - start))
    training = max(rates["streamed"])
    return {
        "size": size,
        "pipeline_images_per_s": pipeline,
        "training_images_per_s": training,
        "training_in_memory_images_per_s": max(rates["in_memory"]),
        "training_cached_images_per_s": max(rates["cached"]),
        "training_samples": rates,
        "headroom": pipeline / training,
    }


def child_check(folder: Path, count: int) -> dict[str, Any]:
    """The header check over ``count`` files against one streamed epoch (pipeline alone)."""
    from cnnspec.training.badfiles import check_files
    from cnnspec.training.pipeline import PipelineSettings, make_dataset

    files, y = _files(folder, count, SIZE)
    start = time.perf_counter()
    bad = check_files(files.paths)
    check = time.perf_counter() - start
    settings = PipelineSettings(batch_size=32, rescale=1 / 255)
    start = time.perf_counter()
    for _ in make_dataset(files, y, settings, training=True, seed=0):
        pass
    epoch = time.perf_counter() - start
    return {"files": count, "bad": len(bad), "check_s": check, "pipeline_epoch_s": epoch}


def in_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/cnnspec-stream-bench"))
    parser.add_argument("--steps", type=int, default=10, help="timed resnet training steps")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only-throughput", action="store_true", help="just the throughput part")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder, *rest = args.child
        if kind == "rss":
            result = child_rss(Path(folder), int(rest[0]), rest[1])
        elif kind == "throughput":
            result = child_throughput(Path(folder), int(rest[0]), int(rest[1]), int(rest[2]))
        else:
            result = child_check(Path(folder), int(rest[0]))
        print(json.dumps(result))
        return
    largest = max(args.sizes)
    start = time.perf_counter()
    generate(args.folder, largest)
    if args.only_throughput:
        throughput = [
            in_child("throughput", str(args.folder), str(min(largest, 4000)), str(size), str(args.steps))
            for size in (32, 128)
        ]
        text = json.dumps({"load_average": os.getloadavg(), "throughput": throughput}, indent=2)
        if args.json:
            args.json.write_text(text + "\n")
        print(text)
        return
    load = os.getloadavg()
    results: dict[str, Any] = {
        "images": largest,
        "image_size": [SIZE, SIZE, 3],
        "generate_s": time.perf_counter() - start,
        "load_average_at_start": load,
        "rss": {},
    }
    results["rss"]["baseline"] = in_child("rss", str(args.folder), str(args.sizes[0]), "baseline")
    for count in args.sizes:
        for mode in ("streamed", "in_memory"):
            results["rss"][f"{mode}_{count}"] = in_child("rss", str(args.folder), str(count), mode)
            print(mode, count, results["rss"][f"{mode}_{count}"], flush=True)
    results["header_check"] = in_child("check", str(args.folder), str(largest))
    epoch = results["rss"].get(f"streamed_{largest}", {}).get("seconds")
    if epoch:
        results["header_check"]["tiny_cnn_epoch_s"] = epoch
    print("header check", results["header_check"], flush=True)
    results["throughput"] = [
        in_child("throughput", str(args.folder), str(min(largest, 4000)), str(size), str(args.steps))
        for size in (32, 128)
    ]
    print("throughput", results["throughput"], flush=True)
    results["load_average_at_end"] = os.getloadavg()
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
