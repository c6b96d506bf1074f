"""Inference without TensorFlow (issue 23): cold `cnnspec predict` per runtime, the image
conversion's agreement with TensorFlow, and `cnnspec benchmark` for digits_cnn and resnet.yaml.

    .venv/bin/python benchmarks/bench_infer.py [--work DIR] [--repeats 5] [--skip-resnet]

Everything runs through the CLI in child processes, so this script itself stays light (its
children's peak memory is read with ``os.wait4``, per child). ResNet trains on the synthetic
CIFAR-shaped data (benchmarks/synthetic.py; CIFAR-10 is a download) for 4 short epochs: its
speed figures are the model's, its accuracy only says that every runtime agrees. Prints
Markdown for benchmarks/README.md's notes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).with_name("cnnspec"))
sys.path.insert(0, str(ROOT))


#: Runs the CLI like the ``cnnspec`` script and writes the process's own peak memory (VmHWM,
#: which exec resets) on exit: a child's ``ru_maxrss`` would include its parent's memory,
#: inherited through fork + exec.
WRAPPER = """
import atexit, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(out, "w").write(line.split()[1])
atexit.register(peak)
out, sys.argv = sys.argv[1], ["cnnspec", *sys.argv[2:]]
from cnnspec.cli.app import main
main()
"""


def timed(args: list[str]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds (user + system), peak resident MB and exit code of one
    ``cnnspec`` command run in a child process."""
    with tempfile.NamedTemporaryFile(suffix=".peak") as peak:
        started = time.perf_counter()
        command = [sys.executable, "-c", WRAPPER, peak.name, *args]
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        text = Path(peak.name).read_text().strip()
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, int(text) / 1024 if text else float("nan"), os.waitstatus_to_exitcode(status)


def cli(*args: str) -> None:
    subprocess.run([CLI, *args], check=True, stdout=subprocess.DEVNULL)


def train(spec: Path, out: Path, *extra: str) -> Path:
    if not (out / "model.keras").is_file():
        shutil.rmtree(out, ignore_errors=True)
        cli("train", str(spec), "--out", str(out), "--quiet", *extra)
    return out


def cold_predict(run: Path, image: Path, repeats: int) -> list[str]:
    """Each runtime ``repeats`` times, interleaved so that they share the machine's load."""
    runtimes = ("onnx", "tflite", "keras")
    results: dict[str, list[tuple[float, float, float, int]]] = {r: [] for r in runtimes}
    for _ in range(repeats):
        for runtime in runtimes:
            results[runtime].append(timed(["predict", str(run), str(image), "--runtime", runtime]))
    rows = [
        "| runtime | wall, median (min–max) | CPU (user + system), median | peak memory, median |",
        "| --- | --- | --- | --- |",
    ]
    for runtime, runs in results.items():
        assert all(code == 0 for *_x, code in runs), (runtime, runs)
        walls = [r[0] for r in runs]
        cpu = statistics.median(r[1] for r in runs)
        memory = statistics.median(r[2] for r in runs)
        rows.append(
            f"| {runtime} | {statistics.median(walls):.3f} ({min(walls):.3f}–{max(walls):.3f}) s "
            f"| {cpu:.3f} s | {memory:,.0f} MB |"
        )
    return rows


def agreement(*args: str) -> list[str]:
    """Pixels of cnnspec's conversion against tf.io.decode_image + tf.image.resize; with a
    run folder, its exports against Keras on the test split."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("_infer_agreement.py")), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()


def benchmark_table(run: Path) -> list[str]:
    cli("benchmark", str(run), "--formats", "keras,onnx,tflite", "--batch", "1,32")
    document = json.loads((run / "benchmark.json").read_text())
    rows = [
        "| runtime | batch 1 median (p90) | batch 32 median (p90) | batch 1 img/s | batch 32 img/s | "
        "batch 1 / 32 CPU per call | accuracy | file | peak memory | import + load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in document["results"]:
        if r["status"] != "ok":
            rows.append(f"| {r['runtime']} | {r['status']} |")
            continue
        lat = r["latency_ms"]
        rows.append(
            f"| {r['runtime']} | {lat['1']['median']:.3f} ({lat['1']['p90']:.3f}) ms | "
            f"{lat['32']['median']:.2f} ({lat['32']['p90']:.2f}) ms | {r['throughput']['1']:,.0f} | "
            f"{r['throughput']['32']:,.0f} | {lat['1']['cpu']:.3f} / {lat['32']['cpu']:.2f} ms | "
            f"{r['accuracy']:.4f} | {r['size_bytes'] / 1024:,.1f} KiB | "
            f"{r['peak_memory_mb']:,.0f} MB | {r['load_seconds']:.2f} s |"
        )
    threads = document["settings"]["threads"]
    rows.append(
        f"\n{document['data']['images']:,} test images; {threads['intra_op']} intra-op / "
        f"{threads['inter_op']} inter-op threads everywhere; "
        f"load average {document['machine']['load_average']}."
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cnnspec-bench-infer")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--only-cold", action="store_true", help="only the cold predict table")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}\n")
    digits = train(ROOT / "specs" / "digits_cnn.yaml", work / "digits_cnn")
    for fmt in ("onnx", "tflite"):
        cli("export", str(digits), "--format", fmt)
    from PIL import Image
    from sklearn.datasets import load_digits

    image = work / "digit.png"
    Image.fromarray((load_digits().images[0] * 16).clip(0, 255).astype("uint8")).save(image)
    print("### Cold `cnnspec predict RUN digit.png --runtime R` (digits_cnn)\n")
    print("\n".join(cold_predict(digits, image, args.repeats)))
    print(f"\nload average after: {os.getloadavg()}\n")
    if args.only_cold:
        return
    print("### Image conversion against TensorFlow's decode + resize\n")
    print("\n".join(agreement()))
    print("\n### `cnnspec benchmark` digits_cnn\n")
    print("\n".join(benchmark_table(digits)))
    print()
    print("\n".join(agreement(str(digits))))
    if not args.skip_resnet:
        from benchmarks import synthetic

        synthetic.write(work, n_train=2_000, n_test=500)
        spec = work / "resnet_synthetic.yaml"
        spec.write_text(
            f"cnnspec: 1\nextends: {ROOT / 'specs' / 'resnet.yaml'}\n"
            f"data: {{source: {{npz: {work / 'cnnspec.npz'}}}, validation_split: 0.2}}\n"
            "training: {epochs: 4}\n",
            encoding="utf-8",
        )
        resnet = train(spec, work / "resnet", "--allow-outside")
        print("\n### `cnnspec benchmark` resnet.yaml (synthetic CIFAR-shaped data, 4 epochs)\n")
        print("\n".join(benchmark_table(resnet)))
        print()
        print("\n".join(agreement(str(resnet))))


if __name__ == "__main__":
    main()
