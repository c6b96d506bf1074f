"""Line counts with and without graph blocks (issue 24's evidence; no timing).

For the reduced NASNet-like network of benchmarks/graphs/ (every cell reads the two previous
cells' outputs) at 3 and 6 cells per stack: the lines of the spec and of `cnnspec codegen`'s
module, written with graph blocks (nasnet_cells.yaml, `--set vars.cells=N`) and without them
(make_flat.py writes each cell out); both must give the same parameter count. Then the same
counts for specs/unet.yaml. TF-free: only the front end and the emitter run.

    python benchmarks/bench_graphs.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "graphs"))

from make_flat import flat_spec  # noqa: E402

from cnnspec.api import compile_spec, generate_code  # noqa: E402

GRAPHS = ROOT / "benchmarks" / "graphs"


def lines(text: str) -> int:
    return len(text.splitlines())


def counts(path: Path, overrides: tuple[str, ...] = ()) -> dict[str, int]:
    compiled = compile_spec(path, overrides) if overrides else compile_spec(path)
    code = generate_code(compiled)
    spec_lines = lines(path.read_text(encoding="utf-8"))
    return {"spec_lines": spec_lines, "code_lines": lines(code), "parameters": compiled.ir.totals.params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    results: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cells in (3, 6):
            results[f"nasnet_cells/{cells} with graph blocks"] = counts(
                GRAPHS / "nasnet_cells.yaml", (f"vars.cells={cells}",)
            )
            flat = Path(tmp) / f"nasnet_cells_flat_{cells}.yaml"
            flat.write_text(flat_spec(cells), encoding="utf-8")
            results[f"nasnet_cells/{cells} without"] = counts(flat)
            with_blocks = results[f"nasnet_cells/{cells} with graph blocks"]["parameters"]
            if with_blocks != results[f"nasnet_cells/{cells} without"]["parameters"]:
                raise SystemExit(f"the two nasnet_cells/{cells} specs differ: not the same network")
    results["unet"] = counts(ROOT / "specs" / "unet.yaml")
    for name, row in results.items():
        print(
            f"{name:38} spec {row['spec_lines']:4} lines  code {row['code_lines']:4} lines  "
            f"{row['parameters']:,} parameters"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
