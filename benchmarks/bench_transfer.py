"""Transfer learning on the embedded digits (examples/transfer, issue 16).

Pretrain ``examples/transfer/pretrain.yaml`` once (digits 0–4, all their images), then for each
seed train ``examples/transfer/finetune.yaml`` (digits 5–9, 10 training images per class) twice
on the same 50 images (the seed picks them):

- **fine-tuned**: ``cnnspec train finetune.yaml --weights PRETRAIN_RUN --set training.seed=S``
  (its two phases: the new head with the body frozen, then everything at a lower rate);
- **from scratch**: the same spec without weights, every layer trained for the same number of
  epochs, once at each of ``SCRATCH_LRS``
  (``--set 'training.phases=[{epochs: N, learning_rate: LR}]'``, N the phases' epochs together);
  the learning rate with the best mean is the baseline (every one is reported);
- **all images** (the ceiling): from scratch as above, but on every training image of 5–9
  (``--set data.per_class=ALL_IMAGES``: about 645 images instead of 50), at each of
  ``SCRATCH_LRS``, the better mean reported. A 50-image run is not expected to beat it, so
  ``all images − baseline`` bounds the margin fine-tuning can win on a seed (``--no-ceiling``
  leaves these runs out).

Every run is one cold ``cnnspec train`` process, the plain command a user types. Reports the
mean (and each) test accuracy on the 179 test images of 5–9, and the wall times. Needs the
``--weights`` option of ``cnnspec train`` (issue 16's weight sources). Run by hand:

    .venv/bin/python benchmarks/bench_transfer.py [--seeds 1,2,3,4,5] [--work DIR] [--json out.json]
        [--no-ceiling]
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
#: phases together, at each of these learning rates (the best mean is the baseline).
SCRATCH_EPOCHS = sum(
    phase["epochs"]
    for phase in yaml.safe_load((EXAMPLE / "finetune.yaml").read_text(encoding="utf-8"))["training"]["phases"]
)
SCRATCH_LRS = (0.003, 0.001)
#: A per-class cap above the digits' count of any class (about 180): every training image.
ALL_IMAGES = 10_000


def scratch_setting(learning_rate: float) -> str:
    """The ``--set`` that makes finetune.yaml a from-scratch run at ``learning_rate``."""
    return f"training.phases=[{{epochs: {SCRATCH_EPOCHS}, learning_rate: {learning_rate}}}]"


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
    parser.add_argument("--no-ceiling", action="store_true", help="skip the all-images runs")
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
            scratch = {
                lr: train(
                    f"scratch-{lr}-{seed}",
                    [finetune, "--set", f"training.seed={seed}", "--set", scratch_setting(lr)],
                    work,
                )
                for lr in SCRATCH_LRS
            }
            rows.append({"seed": seed, "finetuned": tuned, "scratch": scratch})
            print(
                f"seed {seed}: fine-tuned {tuned['test_accuracy']:.4f} ({tuned['wall_seconds']:.0f} s), "
                "from scratch "
                + ", ".join(
                    f"{run['test_accuracy']:.4f} at {lr} ({run['wall_seconds']:.0f} s)"
                    for lr, run in scratch.items()
                ),
                flush=True,
            )
        best_lr = max(
            SCRATCH_LRS, key=lambda lr: statistics.mean(r["scratch"][lr]["test_accuracy"] for r in rows)
        )
        for row in [] if args.no_ceiling else rows:
            seed = row["seed"]
            row["all_images"] = {}
            for lr in SCRATCH_LRS:
                settings = [f"training.seed={seed}", scratch_setting(lr), f"data.per_class={ALL_IMAGES}"]
                run = train(
                    f"all-images-{lr}-{seed}",
                    [finetune, *(arg for s in settings for arg in ("--set", s))],
                    work,
                )
                row["all_images"][lr] = run
                print(
                    f"seed {seed}: all {run['train_images']} training images from scratch at {lr}: "
                    f"{run['test_accuracy']:.4f}",
                    flush=True,
                )

    def mean(runs: list[dict[str, Any]], field: str = "test_accuracy") -> float:
        return statistics.mean(run[field] for run in runs)

    tuned_runs = [row["finetuned"] for row in rows]
    scratch_means = {lr: mean([row["scratch"][lr] for row in rows]) for lr in SCRATCH_LRS}
    baseline = [row["scratch"][best_lr] for row in rows]
    margins = [t["test_accuracy"] - b["test_accuracy"] for t, b in zip(tuned_runs, baseline, strict=True)]
    result = {
        "machine": machine_info(),
        "pretrain": pretrained,
        "runs": [{**row, "scratch": {str(lr): run for lr, run in row["scratch"].items()}} for row in rows],
        "finetuned_mean_accuracy": mean(tuned_runs),
        "scratch_mean_accuracy": {str(lr): value for lr, value in scratch_means.items()},
        "scratch_best_learning_rate": best_lr,
        "finetuned_mean_wall": mean(tuned_runs, "wall_seconds"),
        "scratch_mean_wall": mean(baseline, "wall_seconds"),
        "mean_margin": statistics.mean(margins),
        "min_margin": min(margins),
        "finetuned_wins": sum(margin > 0 for margin in margins),
        "scratch_command_set": scratch_setting(best_lr),
    }
    if not args.no_ceiling:
        ceiling_means = {lr: mean([row["all_images"][lr] for row in rows]) for lr in SCRATCH_LRS}
        ceiling_lr = max(SCRATCH_LRS, key=ceiling_means.__getitem__)
        ceiling = [row["all_images"][ceiling_lr] for row in rows]
        headroom = [c["test_accuracy"] - b["test_accuracy"] for c, b in zip(ceiling, baseline, strict=True)]
        for row in result["runs"]:
            row["all_images"] = {str(lr): run for lr, run in row["all_images"].items()}
        result |= {
            "all_images_mean_accuracy": {str(lr): value for lr, value in ceiling_means.items()},
            "all_images_best_learning_rate": ceiling_lr,
            "headroom": headroom,
        }
    print(
        f"pretrain (digits 0-4, {pretrained['train_images']} images): test accuracy "
        f"{pretrained['test_accuracy']:.4f}, {pretrained['wall_seconds']:.0f} s\n"
        f"fine-tuned, mean over {len(rows)} seeds: {result['finetuned_mean_accuracy']:.4f} "
        f"(wall {result['finetuned_mean_wall']:.0f} s a run)\n"
        + "".join(f"from scratch at {lr}, mean: {value:.4f}\n" for lr, value in scratch_means.items())
        + f"baseline: from scratch at {best_lr}, the best mean "
        f"(wall {result['scratch_mean_wall']:.0f} s a run); "
        f"the fine-tuned run is better on {result['finetuned_wins']} of {len(rows)} seeds, by "
        f"{100 * result['mean_margin']:.1f} points on average (least {100 * result['min_margin']:.1f})"
        + (
            ""
            if args.no_ceiling
            else f"\nall training images from scratch (the ceiling), best mean (at {ceiling_lr}): "
            f"{ceiling_means[ceiling_lr]:.4f}; headroom over the baseline per seed: "
            + " ".join(f"{100 * h:.1f}" for h in result["headroom"])
            + " points"
        )
    )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
