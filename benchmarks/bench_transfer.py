"""Transfer learning on the embedded digits (examples/transfer, issue 16).

Pretrain ``examples/transfer/pretrain.yaml`` once (digits 0–4, all their images), then for each
seed train ``examples/transfer/finetune.yaml`` (digits 5–9, 10 training images per class) twice
on the same 50 images (the seed picks them):

- **fine-tuned**: ``cnnspec train finetune.yaml --weights PRETRAIN_RUN --set training.seed=S``
  (its two phases: the new head with the body frozen, then everything at a lower rate);
- **from scratch**: the same spec without weights, every layer trained for the same number of
  epochs at the pretraining's learning rate
  (``--set 'training.phases=[{epochs: N, learning_rate: 0.003}]'``, N the phases' epochs together).

Every run is one cold ``cnnspec train`` process, the plain command a user types. Reports the
mean (and each) test accuracy on the 179 test images of 5–9, and the wall times. Needs the
``--weights`` option of ``cnnspec train`` (issue 16's weight sources). Run by hand:

    .venv/bin/python benchmarks/bench_transfer.py [--seeds 1,2,3,4,5] [--work DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CNNSPEC, ROOT, machine_info, run_child, write_json

EXAMPLE = ROOT / "examples" / "transfer"
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
#: The from-scratch baseline: one phase, nothing frozen, as many epochs as finetune.yaml's
#: phases together, at the pretraining's learning rate.
SCRATCH_EPOCHS = sum(
    phase["epochs"]
    for phase in yaml.safe_load((EXAMPLE / "finetune.yaml").read_text(encoding="utf-8"))["training"]["phases"]
)
SCRATCH_LR = 0.003
SCRATCH = f"training.phases=[{{epochs: {SCRATCH_EPOCHS}, learning_rate: {SCRATCH_LR}}}]"


def train(label: str, args: list[str], work: Path) -> dict[str, Any]:
    """One cold `cnnspec train` process: its metrics.json and wall time."""
    out = work / label
    child = run_child([CNNSPEC, "train", *args, "--out", str(out)], env=ENV, log=work / f"{label}.log")
    child.check(f"cnnspec train ({label})")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {
        "test_accuracy": metrics["test_accuracy"],
        "train_images": metrics["train_images"],
        "test_images": metrics["test_images"],
        "epochs_run": metrics["epochs_run"],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": round(child.seconds, 2),
        "run": str(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--work", type=Path, help="keep the run folders here (default: a temp folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="cnnspec-transfer-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        pretrained = train("pretrain", [str(EXAMPLE / "pretrain.yaml")], work)
        finetune = str(EXAMPLE / "finetune.yaml")
        rows = []
        for seed in seeds:
            tuned = train(
                f"finetune-{seed}",
                [finetune, "--weights", pretrained["run"], "--set", f"training.seed={seed}"],
                work,
            )
            scratch = train(
                f"scratch-{seed}", [finetune, "--set", f"training.seed={seed}", "--set", SCRATCH], work
            )
            rows.append({"seed": seed, "finetuned": tuned, "scratch": scratch})
            print(
                f"seed {seed}: fine-tuned {tuned['test_accuracy']:.4f} ({tuned['wall_seconds']:.0f} s), "
                f"from scratch {scratch['test_accuracy']:.4f} ({scratch['wall_seconds']:.0f} s)",
                flush=True,
            )

    def mean(key: str, field: str) -> float:
        return statistics.mean(row[key][field] for row in rows)

    result = {
        "machine": machine_info(),
        "pretrain": pretrained,
        "runs": rows,
        "finetuned_mean_accuracy": mean("finetuned", "test_accuracy"),
        "scratch_mean_accuracy": mean("scratch", "test_accuracy"),
        "finetuned_mean_wall": mean("finetuned", "wall_seconds"),
        "scratch_mean_wall": mean("scratch", "wall_seconds"),
        "finetuned_wins": sum(r["finetuned"]["test_accuracy"] > r["scratch"]["test_accuracy"] for r in rows),
        "scratch_command_set": SCRATCH,
    }
    print(
        f"pretrain (digits 0-4, {pretrained['train_images']} images): test accuracy "
        f"{pretrained['test_accuracy']:.4f}, {pretrained['wall_seconds']:.0f} s\n"
        f"fine-tuned, mean over {len(rows)} seeds: {result['finetuned_mean_accuracy']:.4f} "
        f"(wall {result['finetuned_mean_wall']:.0f} s a run)\n"
        f"from scratch, mean over {len(rows)} seeds: {result['scratch_mean_accuracy']:.4f} "
        f"(wall {result['scratch_mean_wall']:.0f} s a run)\n"
        f"the fine-tuned run is better on {result['finetuned_wins']} of {len(rows)} seeds"
    )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
