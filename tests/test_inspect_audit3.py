"""Audit 3 of inspect and build: the layer table on a narrow terminal, the totals line of a
model with several outputs, each JSON layer's file, `build -o folder/`, the size-limit message."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from cnnspec.analysis.passes import compile_spec
from cnnspec.analysis.report import human_count, shape_text
from cnnspec.cli.app import app
from cnnspec.cli.layer_table import summary_table
from cnnspec.errors import SpecError
from cnnspec.spec.loader import MAX_BYTES, decode_source
from tests.conftest import ROOT, SPECS_DIR

MULTI = """\
cnnspec: 1
name: multi
input: {shape: [16, 16, 3], name: img}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: feat
  - conv2d: {filters: 2, kernel_size: 1, activation: softmax}
    id: mask
  - global_avg_pool2d:
    inputs: feat
  - dense: 1
    id: count
outputs: [mask, count]
"""


def rendered(spec: Path, width: int) -> tuple[dict, list[str]]:
    """The spec's inspect summary and its layer table's lines, printed `width` cells wide."""
    summary = compile_spec(spec, []).summary()
    buffer = StringIO()
    console = Console(width=width, file=buffer, color_system=None, highlight=False, emoji=False)
    console.print(summary_table(summary, spec.name))
    return summary, buffer.getvalue().splitlines()


def body_cells(lines: list[str]) -> list[list[str]]:
    """The cells of each line of the table's body (below the header rule), stripped."""
    start = next(i for i, line in enumerate(lines) if line.startswith("┡")) + 1
    return [
        [cell.strip() for cell in line.split("│")[1:-1]] for line in lines[start:] if line.startswith("│")
    ]


def test_an_80_column_table_keeps_kind_shape_and_numbers_whole_and_cuts_long_names():
    """ResNet-50's indented block names are wider than 80 columns leave: the names give way,
    cut at the start (their end tells a block's layers apart), never the other columns."""
    summary, lines = rendered(SPECS_DIR / "resnet50.yaml", 80)
    assert max(len(line) for line in lines) <= 80
    layer_lines = [cells for cells in body_cells(lines) if cells[1]]  # not a group header's
    expected = [
        (
            row["kind"],
            shape_text(row["output_shape"]),
            f"{row['params']:,}",
            human_count(row["macs"]) if row["macs"] else "",
        )
        for row in summary["layers"]
    ]
    assert [tuple(cells[1:]) for cells in layer_lines] == expected  # one line each, all whole
    cut = 0
    for cells, row in zip(layer_lines, summary["layers"], strict=True):
        shown = cells[0]
        if shown.startswith("…"):
            cut += 1
            assert row["name"].endswith(shown[1:]) and len(shown) > 4, (shown, row["name"])
        else:
            assert shown == row["name"]
    assert cut  # the table did need to cut names at 80 columns


def test_a_40_column_table_still_shows_every_number_whole():
    summary, lines = rendered(SPECS_DIR / "basic_cnn.yaml", 40)
    assert max(len(line) for line in lines) <= 40
    cells = body_cells(lines)
    params = [row[-2] for row in cells if row[-2]]
    macs = [row[-1] for row in cells if row[-1]]
    assert params == [f"{row['params']:,}" for row in summary["layers"]]
    assert macs == [human_count(row["macs"]) for row in summary["layers"] if row["macs"]]


def test_the_totals_line_writes_several_outputs_as_keras_shapes(runner, tmp_path):
    spec = tmp_path / "multi.yaml"
    spec.write_text(MULTI)
    result = runner.invoke(app, ["inspect", str(spec)])
    assert result.exit_code == 0, result.output
    assert "→ output (None, 16, 16, 2), (None, 1)  total params" in result.output
    assert "[None" not in result.output
    assert shape_text([[None, 16, 16, 2], [None, 1]]) == "(None, 16, 16, 2), (None, 1)"
    # the JSON keeps its list of shapes: consumers read it so
    document = json.loads(runner.invoke(app, ["inspect", "-f", "json", str(spec)]).stdout)
    assert document["output_shape"] == [[None, 16, 16, 2], [None, 1]]


@pytest.mark.parametrize(
    ("spec", "packaged"),
    [
        (SPECS_DIR / "vgg16.yaml", "cnnspec/zoo/vgg.yaml"),
        (ROOT / "examples" / "backbone" / "resnet50_features.yaml", "cnnspec/zoo/blocks/resnet.yaml"),
    ],
)
def test_inspect_json_names_each_layers_file_beside_its_line(runner, spec, packaged):
    """A layer from an extended zoo model or a backbone has its line in a packaged file."""
    result = runner.invoke(app, ["inspect", "-f", "json", str(spec)])
    assert result.exit_code == 0, result.output
    layers = json.loads(result.stdout)["layers"]
    locs = {node.name: node.loc for node in compile_spec(spec, []).ir.nodes}
    for layer in layers:
        loc = locs[layer["name"]]
        # the diagnostics' `file` (Diagnostic.to_json) is this same loc.file
        assert (layer["file"], layer["line"]) == (loc.file, loc.line)
    assert any(layer["file"].endswith(packaged) for layer in layers)


@pytest.mark.parametrize(
    ("option", "text", "example"),
    [("-o", "new.keras/", "new.keras/model.keras"), ("--plot", "g/", "g/model.png")],
)
def test_build_refuses_a_folder_path_before_tensorflow_is_imported(tmp_path, option, text, example):
    """Typer's Path dropped the slash: `-o new.keras/` wrote a file named new.keras."""
    spec = tmp_path / "basic_cnn.yaml"
    spec.write_text((SPECS_DIR / "basic_cnn.yaml").read_text())
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from cnnspec.cli.app import app\n"
        f"r = CliRunner().invoke(app, ['build', 'basic_cnn.yaml', {option!r}, {text!r}])\n"
        "print(json.dumps([r.exit_code, 'tensorflow' in sys.modules, r.output]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    exit_code, imported, output = json.loads(done.stdout.strip().splitlines()[-1])
    assert exit_code == 2 and not imported, output
    assert f"{text} names a folder; expected a file path such as {example}" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basic_cnn.yaml"]


def test_the_size_limit_names_the_files_own_size(runner, tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_bytes(b"# " + b"x" * 1_999_997 + b"\n")  # 2,000,000 bytes
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert "at most 1024 KiB; received 2,000,000 bytes" in result.output
    assert "1,048,577" not in result.output


def test_the_size_limit_of_a_source_of_unknown_size_says_more_than():
    """A file whose stat says less than was read (0 in /proc): only the limit is known."""
    with pytest.raises(SpecError) as caught:
        decode_source(b"x" * (MAX_BYTES + 1), "f.yaml", 0)
    assert f"received more than {MAX_BYTES:,} bytes" in str(caught.value)
    # the whole source in memory (an editor's buffer): its length is its size
    with pytest.raises(SpecError) as caught:
        decode_source(b"x" * (MAX_BYTES + 5), "f.yaml")
    assert f"received {MAX_BYTES + 5:,} bytes" in str(caught.value)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (999, "999"),
        (1000, "1.00k"),
        (999_994, "999.99k"),
        (999_995, "1.00M"),  # (was 1000.00k)
        (999_995_000, "1.00G"),
        (1_289_300_000_000, "1.29T"),  # (was 1289.30G)
        (5 * 10**15, "5000.00T"),
    ],
)
def test_human_count_never_writes_a_thousand_of_a_unit_and_has_tera(count, text):
    assert human_count(count) == text


def test_inspect_writes_a_million_macs_as_1_00m_not_1000_00k(runner, tmp_path):
    spec = tmp_path / "hc.yaml"
    spec.write_text(
        "cnnspec: 1\nname: hc\ninput: {shape: [199999]}\nmodel:\n"
        "  - dense: {units: 5, activation: softmax}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["inspect", str(spec)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "MACs 1.00M" in result.output and "1000.00k" not in result.output
