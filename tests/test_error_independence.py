"""Each mistake reported once, and every independent mistake reported in the same run.

A value that failed silences only what depends on it (README, "Errors point at the line"):
a bad ``input.shape`` keeps the shapes after it silent, not the layers' own parameters; one
bad value that a ``${…}`` expression reaches several layers with is one error that lists the
other uses. Each case goes through ``cnnspec validate`` (what the user reads) or the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path, overrides: tuple[str, ...] = ()) -> list:
    with pytest.raises(SpecError) as caught:
        compile_spec(path, overrides)
    return caught.value.errors


CASCADE = """\
cnnspec: 1
name: cascade2
input: {shape: [8, 0, -1]}
model:
  - conv2d: {filters: 8.5, kernel_size: 3}
  - dense: {units: 10, activation: softmaxx}
"""


def test_a_bad_input_shape_hides_no_independent_error(tmp_path, runner):
    """Each bad dimension, the layers' own bad parameters, nothing about shapes after it."""
    path = write(tmp_path, CASCADE)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    headlines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert [h.split(": error: ")[1].split(":")[0] for h in headlines] == [
        "input.shape[1]",
        "input.shape[2]",
        "model[0].conv2d.filters",
        "model[1].dense.activation",
    ]
    assert "received integer -1" in headlines[1]
    assert "received number 8.5" in headlines[2]


def test_a_bad_input_shape_keeps_the_shapes_after_it_silent(tmp_path):
    """A layer whose shape rule would fail on any input (a kernel larger than the image)
    cannot be judged without the input shape: one error, the shape's."""
    path = write(
        tmp_path,
        "cnnspec: 1\nname: t\ninput: {shape: [8, 0, 1]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 3}\n  - flatten\n  - dense: 10\n",
    )
    errors = errors_of(path)
    assert [(e.path, e.message) for e in errors] == [
        ("input.shape[1]", "expected an integer ≥ 1; received integer 0")
    ]
