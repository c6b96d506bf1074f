"""SIGKILL at random points, again and again (issue 7): every resume succeeds, no epoch is lost
beyond the one in progress, and every file left behind parses.

`make test` kills 10 times; `CNNSPEC_KILL_LOOPS=100 pytest tests/test_kill_loop.py` (part of
`make fuzz`) kills 100 times. `CNNSPEC_KILL_SEED` picks the random kill points.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_train_resume import CNNSPEC, SPEC

pytestmark = pytest.mark.slow

LOOPS = int(os.environ.get("CNNSPEC_KILL_LOOPS", "10"))


def launch(spec: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [CNNSPEC, "train", str(spec), "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def newest_snapshot(out: Path) -> int:
    numbers = [int(m.group(1)) for p in out.glob("state/epoch-*.json") if (m := re.search(r"(\d+)", p.name))]
    return max(numbers, default=0)


def check_leftovers(out: Path) -> list[int]:
    """Every JSON file left behind parses; the logged epochs are 1..n, each once. (A SIGKILL
    in the middle of an atomic write may leave that write's temp file; the target is intact.)"""
    if not out.exists():
        return []  # killed before the run folder was made
    for path in [*out.glob("*.json"), *out.glob("state/*.json")]:
        json.loads(path.read_text(encoding="utf-8"))
    history = out / "history.json"
    epochs = json.loads(history.read_text())["epoch"] if history.exists() else []
    assert epochs == list(range(1, len(epochs) + 1))
    return epochs


def test_repeated_sigkill_at_random_points_then_resume(tmp_path):
    rng = random.Random(int(os.environ.get("CNNSPEC_KILL_SEED", "1")))
    epochs = 8 * LOOPS + 4  # tiny epochs (~0.1 s): enough that every kill lands before the end
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("EPOCHS", str(epochs)))
    out = tmp_path / "run"
    process = launch(spec, "--out", str(out))
    kills = 0
    logged = 0
    while kills < LOOPS:
        before = newest_snapshot(out)
        deadline = time.monotonic() + 120
        if rng.random() < 0.3:
            time.sleep(rng.uniform(0.0, 4.0))  # anywhere in start-up: imports, loading, restoring
        else:  # inside training: just after a new snapshot, mid-epoch or mid-write
            while newest_snapshot(out) <= before and process.poll() is None:
                assert time.monotonic() < deadline, "no progress within 120 s"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
        if process.poll() is not None:
            break  # finished before this kill
        process.kill()
        process.wait(timeout=30)
        kills += 1
        now = check_leftovers(out)
        assert len(now) >= logged, "a resume lost epochs that were already logged"
        logged = len(now)
        if (out / "lock.json").exists():
            process = launch(spec, "--resume", str(out))
        else:  # killed before the run started: nothing to resume, start it again
            shutil.rmtree(out, ignore_errors=True)
            process = launch(spec, "--out", str(out))
    print(f"{kills} kills, {epochs} epochs")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert kills == LOOPS, f"only {kills} kills landed before training finished"
    assert check_leftovers(out) == list(range(1, epochs + 1))  # every epoch exactly once
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == epochs
    import keras

    assert keras.saving.load_model(out / "model.keras", safe_mode=True).count_params() > 0
