"""`cnnspec import` (issue 19): the folding table of every zoo variant, and the cold import time
of the largest model.

1. For every zoo variant: ``keras:NAME`` (keras.applications, ``weights=None``, the zoo's input
   size) imported in-process; its spec's lines, the hand-written zoo spec's lines, the layers in
   the source, the blocks found, and whether ``build(import(keras model))`` is the same model
   (the fingerprint of ``tests/test_zoo_parity.py``: parameters, weight shapes in order, layer
   classes and configurations, output shape; no inference). Then ``import(build(zoo spec))``:
   the zoo-built model's configuration imported, rebuilt and compared with it.
2. The cold ``cnnspec import big.json -o out.yaml`` process for the variant with the most layers
   (its configuration written by ``model.to_json()`` first), median of ``--repeats``.

Run by hand (a few minutes per family on 2 cores; every model is built three or four times):

    .venv/bin/python benchmarks/bench_import.py [--variants resnet50 ...] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from _common import CNNSPEC, fmt_stat, run_child, summary, write_json

from cnnspec.analysis.zoo import catalog


def same_model(theirs: Any, ours: Any, variant: str | None = None) -> list[str]:
    """The fingerprint entries that differ (empty: the same model); for keras.applications'
    MobileNetV3, up to its raw-op hard sigmoids, written as one Activation layer each."""
    from tests.test_import import _counted, substituted
    from tests.zoo_golden import fingerprint

    a, b = substituted(_counted(fingerprint(theirs)), variant), _counted(fingerprint(ours))
    return [key for key in a if a[key] != b[key]]


def lines_only(entry: Any) -> dict[str, Any]:
    """The folding figures without the round trips (one keras.applications build)."""
    from cnnspec.importer import import_source
    from cnnspec.importer.source import read_source

    source = read_source(f"keras:{entry.keras_name}")
    start = time.perf_counter()
    imported = import_source(source)
    return {
        "variant": entry.name,
        "family": entry.family,
        "zoo_lines": len(entry.spec.read_text(encoding="utf-8").splitlines()),
        "source_layers": imported.source_layers,
        "import_s": time.perf_counter() - start,
        "lines": imported.lines,
        "blocks": len(imported.blocks),
        "block_names": imported.blocks,
        "rewritten": imported.rewritten,
    }


def families_first(entries: list[Any]) -> list[Any]:
    """The smallest variant of every family first, then the rest (a partial run covers all)."""
    smallest: dict[str, Any] = {}
    for entry in entries:
        if entry.family not in smallest or entry.params < smallest[entry.family].params:
            smallest[entry.family] = entry
    first = list(smallest.values())
    return first + [e for e in entries if e not in first]


def one_variant(entry: Any) -> dict[str, Any]:
    import keras

    from cnnspec.analysis.passes import compile_text
    from cnnspec.api import build_model, compile_spec
    from cnnspec.errors import SpecError
    from cnnspec.importer import import_source
    from cnnspec.importer.source import Source, read_source

    row: dict[str, Any] = {"variant": entry.name, "family": entry.family, "keras_name": entry.keras_name}
    row["zoo_lines"] = len(entry.spec.read_text(encoding="utf-8").splitlines())
    keras.backend.clear_session()
    source = read_source(f"keras:{entry.keras_name}")
    row["source_layers"] = len(source.model.layers)
    try:
        start = time.perf_counter()
        imported = import_source(source)
        row["import_s"] = time.perf_counter() - start
        row["lines"] = imported.lines
        row["blocks"] = len(imported.blocks)
        row["block_names"] = imported.blocks
        keras.backend.clear_session()
        row["rewritten"] = imported.rewritten
        row["keras_diff"] = same_model(source.model, build_model(compile_text(imported.text)), entry.name)
    except SpecError as exc:
        row["refused"] = exc.diagnostics[0].message
        row["keras_diff"] = None
    del source
    keras.backend.clear_session()
    zoo_model = build_model(compile_spec(f"zoo:{entry.name}"))
    imported = import_source(Source(f"zoo:{entry.name}", json.loads(zoo_model.to_json())))
    row["zoo_import_lines"] = imported.lines
    row["zoo_import_blocks"] = len(imported.blocks)
    keras.backend.clear_session()
    row["zoo_diff"] = same_model(zoo_model, build_model(compile_text(imported.text)))
    keras.backend.clear_session()
    gc.collect()
    return row


def cold_import(entry: Any, repeats: int) -> dict[str, Any]:
    """Measurement 2: cold `cnnspec import` processes on the largest model's JSON config."""
    import keras

    from cnnspec.importer.source import read_source

    keras.backend.clear_session()
    with tempfile.TemporaryDirectory(prefix="cnnspec-import-") as tmp:
        config = Path(tmp) / f"{entry.name}.json"
        config.write_text(read_source(f"keras:{entry.keras_name}").model.to_json(), encoding="utf-8")
        size = config.stat().st_size
        samples = []
        for _ in range(repeats):
            child = run_child([CNNSPEC, "import", str(config), "-o", str(Path(tmp) / "out.yaml")])
            child.check("cnnspec import")
            samples.append((child.seconds, child.cpu_seconds, child.peak_rss))
    return {
        "variant": entry.name,
        "layers": entry.layers,
        "config_bytes": size,
        "wall": summary([s[0] for s in samples]),
        "cpu": summary([s[1] for s in samples]),
        "peak_rss_mb": max(s[2] for s in samples) / 2**20,
    }


def _ok(diff: list[str] | None, refused: str | None = None) -> str:
    if diff is None:
        return "refused"
    return "yes" if not diff else "NO: " + ", ".join(diff)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | source layers | spec lines | zoo spec lines | blocks | keras → spec same model | "
        "zoo → import → spec same model (lines) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        spec = r.get("lines", "—")
        blocks = r.get("blocks", "—")
        keras_ok = _ok(r["keras_diff"]) if "refused" not in r else f"refused: {r['refused'][:60]}"
        if r.get("rewritten"):
            keras_ok += f" ({r['rewritten']} raw-op hard sigmoids → activation)"
        lines.append(
            f"| {r['variant']} | {r['source_layers']} | {spec} | {r['zoo_lines']} | {blocks} | {keras_ok} | "
            f"{_ok(r['zoo_diff'])} ({r['zoo_import_lines']}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="*", help="zoo variants (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="cold import processes")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold import measurement")
    parser.add_argument("--json", type=Path, help="write the results here (after every variant)")
    parser.add_argument("--lines-only", action="store_true", help="the folding figures, no round trips")
    args = parser.parse_args()
    entries = families_first([e for e in catalog() if not args.variants or e.name in args.variants])
    rows = []
    if args.lines_only:
        for entry in entries:
            rows.append(lines_only(entry))
            print(json.dumps(rows[-1]), flush=True)
            write_json(args.json, {"rows": rows})
        return
    for entry in entries:
        row = one_variant(entry)
        rows.append(row)
        write_json(args.json, {"rows": rows})
        print(
            f"{row['variant']}: {row.get('lines', '—')} lines, {row['source_layers']} layers, "
            f"{row.get('blocks', '—')} blocks, keras {_ok(row['keras_diff'])}, zoo {_ok(row['zoo_diff'])}",
            flush=True,
        )
    print()
    print(table(rows))
    result: dict[str, Any] = {"rows": rows}
    if not args.no_cold and entries:
        largest = max(entries, key=lambda e: e.layers)
        cold = cold_import(largest, args.repeats)
        result["cold"] = cold
        print()
        print(
            f"cold `cnnspec import` of {cold['variant']} ({cold['layers']} layers, "
            f"{cold['config_bytes'] / 1e6:.1f} MB config): "
            f"wall {fmt_stat(cold['wall'], digits=2, unit=' s')}, "
            f"CPU {fmt_stat(cold['cpu'], digits=2, unit=' s')}, peak RSS {cold['peak_rss_mb']:.0f} MB"
        )
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
