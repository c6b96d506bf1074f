"""Hyperparameter search evidence (issue 17), run by hand: `python benchmarks/bench_search.py OUT`.

1. `examples/search/digits_search.yaml`: 20 TPE trials with median pruning, 2 workers — wall
   time, trials pruned, the best trial's test accuracy — against `specs/digits_cnn.yaml`
   trained once with the same seed (the model the search starts from).
2. The same 8 trials (a grid: width × batch size × learning rate, 5 epochs, no pruning) with 1
   and with 2 workers: the wall-time ratio.

Prints a Markdown table for the notes of benchmarks/README.md. Takes 20-40 minutes on 2 cores.
`--ratio-only` runs part 2 alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CNNSPEC = str(Path(sys.executable).parent / "cnnspec")
EXAMPLE = "examples/search/digits_search.yaml"
GRID = [
    "--set", "search.sampler=grid", "--set", "search.pruner=none", "--set", "training.epochs=5",
    "--set", "search.space={vars.width: {choice: [16, 32]}, training.batch_size: {choice: [32, 64]}, "
    "training.optimizer.adam.learning_rate: {choice: [0.001, 0.003]}}",
]  # fmt: skip


def timed(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([CNNSPEC, *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"cnnspec {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0] if args else "runs/bench-search").resolve()
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    if "--ratio-only" in sys.argv:
        one = timed("search", EXAMPLE, *GRID, "--workers", "1", "--out", str(out / "grid-1"), "-q")
        two = timed("search", EXAMPLE, *GRID, "--workers", "2", "--out", str(out / "grid-2"), "-q")
        print(f"load average before: {load[0]:.2f}; after: {os.getloadavg()[0]:.2f}")
        print(f"| 8 grid trials × 5 epochs: 1 / 2 workers | {one:.0f} s / {two:.0f} s: {one / two:.2f}× |")
        return
    tpe = timed("search", EXAMPLE, "--workers", "2", "--out", str(out / "tpe20"), "-q")
    summary = json.loads((out / "tpe20" / "search.json").read_text())
    best = summary["best"]
    baseline_seconds = timed("train", "specs/digits_cnn.yaml", "--out", str(out / "baseline"), "-q")
    baseline = json.loads((out / "baseline" / "metrics.json").read_text())["test_accuracy"]
    one = timed("search", EXAMPLE, *GRID, "--workers", "1", "--out", str(out / "grid-1"), "-q")
    two = timed("search", EXAMPLE, *GRID, "--workers", "2", "--out", str(out / "grid-2"), "-q")
    pruned = [t for t in summary["trials"] if t["state"] == "PRUNED"]
    epochs = sum(t["epochs"] or 0 for t in summary["trials"])
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: {os.getloadavg()[0]:.2f}")
    print("| What | Figure |")
    print("| --- | --- |")
    print(f"| 20-trial TPE search, median pruning, 2 workers: wall time | {tpe / 60:.1f} min |")
    print(
        f"| trials pruned | {len(pruned)} of {len(summary['trials'])} (at epochs "
        f"{', '.join(str(t['pruned_at_epoch']) for t in pruned)}); {epochs} epochs trained of "
        f"{40 * len(summary['trials'])} |"
    )
    print(
        f"| best trial ({best['number']}): val_accuracy {best['value']:.4f}, test accuracy "
        f"{best['test_accuracy']:.4f} | params {best['params']} |"
    )
    print(f"| `specs/digits_cnn.yaml`, seed 42: test accuracy | {baseline:.4f} ({baseline_seconds:.0f} s) |")
    print(f"| 8 grid trials × 5 epochs: 1 worker / 2 workers | {one:.0f} s / {two:.0f} s: {one / two:.2f}× |")


if __name__ == "__main__":
    main()
