"""Time and memory of hostile input (issue 7): the worst spec an attacker can hand the front end.

Every file of tests/fixtures/hostile/ plus worst cases generated here (a 50 MB file, 1,000-deep
block mappings, a 900 KB line, files at the 50,000-node budget, a 16,000-var chain, 20,000
unknown layers, …) goes through ``compile_spec`` in a fresh child process, after a warm-up
compile of a small spec (imports and the schema validator are not the attacker's doing). For
each input the child reports:

* time: median of ``--repeats`` in-process runs (and the first run),
* memory: the peak of Python allocations during one run (tracemalloc) and the growth of the
  process's maximum resident set size over all runs (ru_maxrss, which also sees C allocations),

and, for the worst few, the wall time of a whole cold ``cnnspec validate FILE`` process.
Targets: under 1 s and 100 MB per input. Run by hand:

    .venv/bin/python benchmarks/bench_hostile.py [--repeats 5] [--only NAME] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "fixtures" / "hostile"
CNNSPEC = str(Path(sys.executable).with_name("cnnspec"))
TARGET_S = 1.0
TARGET_MB = 100.0

CHILD = r"""
import json, resource, sys, time, tracemalloc
from cnnspec.api import compile_spec, compile_text
from cnnspec.errors import SpecError

path, repeats = sys.argv[1], int(sys.argv[2])
compile_text("cnnspec: 1\nname: warm\ninput: {shape: [8, 8, 1]}\nmodel: [flatten, {dense: 2}]\n")

def run():
    try:
        compiled = compile_spec(path, allow_outside=False)
        return "ok", f"{len(compiled.ir.nodes)} layers"
    except SpecError as exc:
        first = exc.errors[0]
        return "error", f"{first.code}: {first.message[:70]}"

rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(repeats):
    started = time.perf_counter()
    outcome = run()
    times.append(time.perf_counter() - started)
rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
run()
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"times": times, "rss_growth_kb": rss_after - rss_before, "traced_peak": peak,
                  "outcome": outcome[0], "detail": outcome[1]}))
"""


def generated_inputs(folder: Path) -> dict[str, Path]:
    """Worst cases too large to commit, written into ``folder``."""
    head = "cnnspec: 1\nname: worst\ninput: {shape: [32, 32, 3]}\n"
    files: dict[str, str | bytes] = {}
    files["gen_50mb_file"] = b""  # written in chunks below
    files["gen_deep_block_mapping_1000"] = (
        "cnnspec: 1\nname: deep\nvars:\n"
        + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(1000))
        + " " * 1001
        + "1\n"
    )
    files["gen_long_line_900kb"] = head + "model: [flatten]\ndescription: " + "x" * 900_000 + " : oops\n"
    files["gen_node_budget_keys"] = (
        head + "model: [flatten]\n" + "".join(f"k{i}: {i}\n" for i in range(60_000))
    )
    files["gen_node_budget_list"] = (
        head + "model: [flatten]\nvars: {xs: [" + ", ".join("1" for _ in range(60_000)) + "]}\n"
    )
    files["gen_node_budget_blocks"] = (
        head
        + "model: [flatten]\nblocks:\n"
        + "".join(f"  b{i}: {{layers: [identity]}}\n" for i in range(12_000))
    )
    files["gen_var_chain_16000"] = (
        head
        + "model: [flatten, {dense: '${v0}'}]\nvars:\n"
        + "".join(f"  v{i}: '${{v{i + 1} + 0}}'\n" for i in range(16_000))
        + "  v16000: 3\n"
    )
    files["gen_unknown_kinds_20000"] = head + "model:\n" + "".join(f"  - kind{i}\n" for i in range(20_000))
    files["gen_identity_19000"] = head + "model:\n" + "  - identity\n" * 19_000 + "  - flatten\n"
    files["gen_doubling_vars"] = (
        head
        + "model:\n  - flatten:\n    when: '${l40}'\nvars:\n  l0: [1, 1]\n"
        + "".join(f"  l{i + 1}: ['${{l{i}}}', '${{l{i}}}']\n" for i in range(40))
    )
    files["gen_expressions_40000"] = (
        head + "model: [flatten]\nvars: {xs: [" + ", ".join(f"'${{{i} * 2}}'" for i in range(40_000)) + "]}\n"
    )
    files["gen_anchors_40000"] = (
        head + "model: [flatten]\nvars: {xs: [" + ", ".join(f"&a{i} {i}" for i in range(40_000)) + "]}\n"
    )
    paths = {}
    for name, content in files.items():
        path = folder / f"{name}.yaml"
        if name == "gen_50mb_file":
            with path.open("wb") as handle:
                handle.write(head.encode() + b"model: [flatten]\n")
                line = b"# " + b"x" * (1024 * 1024 - 3) + b"\n"
                for _ in range(50):
                    handle.write(line)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        paths[name] = path
    return paths


def measure(path: Path, repeats: int) -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(repeats)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=False,
    )
    if child.returncode != 0:
        return {"crash": child.stderr[-2000:]}
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["median_s"] = statistics.median(result["times"])
    result["first_s"] = result["times"][0]
    result["size"] = path.stat().st_size
    return result


def cold_cli(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run([CNNSPEC, "validate", str(path)], capture_output=True, timeout=600, cwd=ROOT, check=False)
    return time.perf_counter() - started


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", help="measure only inputs whose name contains this")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cnnspec-hostile-") as tmp:
        inputs = {p.stem: p for p in sorted(HOSTILE.glob("*.yaml")) if p.name != "expected.yaml"}
        inputs.update(generated_inputs(Path(tmp)))
        if args.only:
            inputs = {k: v for k, v in inputs.items() if args.only in k}
        results: dict[str, dict[str, Any]] = {}
        for name, path in inputs.items():
            results[name] = measure(path, args.repeats)
            print(f"  measured {name}", file=sys.stderr, flush=True)
        ranked = sorted(results, key=lambda n: results[n].get("median_s", 1e9), reverse=True)
        for name in ranked[:5]:
            results[name]["cold_cli_s"] = cold_cli(inputs[name])

    crashed = {n: r for n, r in results.items() if "crash" in r}
    fine = {n: r for n, r in results.items() if "crash" not in r}
    print(
        f"\nHostile inputs through compile_spec (median of {args.repeats}, warm process; memory of one run)\n"
    )
    print(f"{'input':38s} {'size':>9s} {'median':>9s} {'first':>9s} {'traced':>9s} {'rss+':>9s}  outcome")
    for name in sorted(fine, key=lambda n: fine[n]["median_s"], reverse=True):
        r = fine[name]
        cold = f"  (cold CLI {r['cold_cli_s']:.2f} s)" if "cold_cli_s" in r else ""
        print(
            f"{name:38s} {human_size(r['size']):>9s} {r['median_s'] * 1000:7.1f}ms "
            f"{r['first_s'] * 1000:7.1f}ms "
            f"{r['traced_peak'] / 2**20:7.1f}MB {r['rss_growth_kb'] / 1024:7.1f}MB  {r['outcome']}: "
            f"{r['detail']}{cold}"
        )
    worst_time = max(fine, key=lambda n: fine[n]["median_s"])
    worst_traced = max(fine, key=lambda n: fine[n]["traced_peak"])
    worst_rss = max(fine, key=lambda n: fine[n]["rss_growth_kb"])
    print(
        f"\nworst time:   {worst_time} {fine[worst_time]['median_s'] * 1000:.1f} ms "
        f"(target {TARGET_S * 1000:.0f} ms)"
        f"\nworst memory: {worst_traced} {fine[worst_traced]['traced_peak'] / 2**20:.1f} MB traced; "
        f"{worst_rss} +{fine[worst_rss]['rss_growth_kb'] / 1024:.1f} MB RSS (target {TARGET_MB:.0f} MB)"
        f"\ninputs: {len(results)}, crashed: {len(crashed)}"
    )
    for name, r in crashed.items():
        print(f"CRASH {name}:\n{r['crash']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    ok = (
        not crashed
        and fine[worst_time]["median_s"] < TARGET_S
        and fine[worst_traced]["traced_peak"] < TARGET_MB * 2**20
        and fine[worst_rss]["rss_growth_kb"] < TARGET_MB * 1024
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
