"""Hints that name what can be done where the error is met: a ``--data`` CSV missing a column
is told to rename its header (evaluate has no option for the spec's column names), and
``test_split`` beside a source with its own test set names every source that takes it."""

from __future__ import annotations

import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.reporting.run import parse_source, with_source
from cnnspec.training.data import load_dataset
from tests.test_listing_edges import make_images, write_spec


@pytest.mark.parametrize("as_data", [True, False], ids=["--data", "spec"])
def test_a_csv_missing_a_column_is_told_what_its_reader_can_change(tmp_path, as_data):
    make_images(tmp_path / "pics", {"a": 2, "b": 2})
    rows = "".join(f"pics/{c}/{c}{i}.png,{c}\n" for c in "ab" for i in range(2))
    (tmp_path / "list2.csv").write_text("path,cls\n" + rows)
    compiled = compile_spec(write_spec(tmp_path, "{source: {directory: pics}}"))
    if as_data:  # what evaluate, visualize, report and calibrate read --data list2.csv as
        compiled = with_source(compiled, parse_source(str(tmp_path / "list2.csv")))
    else:
        compiled = compile_spec(write_spec(tmp_path, "{source: {csv: list2.csv}}"))
    with pytest.raises(SpecError) as info:
        load_dataset(compiled, training_config(compiled), 0, test_only=as_data)
    (error,) = info.value.errors
    assert error.message == "expected a column 'file' in list2.csv; its columns are 'path', 'cls'"
    assert error.hint == (
        "rename the header's columns to 'file' and 'label': --data is read with the run's column names "
        "(data.source.image_column and label_column)"
        if as_data
        else "set data.source.image_column / label_column to the header's names"
    )


@pytest.mark.parametrize(
    ("source", "kind"),
    [("{npz: f.npz}", "npz"), ("mnist", "mnist"), ("{directory: d, test_directory: t}", "directory")],
)
def test_test_split_beside_a_test_set_names_every_source_that_takes_it(runner, tmp_path, source, kind):
    path = write_spec(tmp_path, f"{{source: {source}, test_split: 0.2}}")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert (
        f"error: data.test_split: expected no test_split for a source with its own test set ({kind}); "
        "received 0.2"
    ) in out
    assert (
        "hint: test_split applies to digits, shapes, directory without test_directory, csv without "
        "test_csv and images: with masks/labels/values"
    ) in out


@pytest.mark.parametrize(
    "source",
    ["digits", "{shapes: {images: 20}}", "{directory: d}", "{csv: l.csv}", "{images: d, labels: l.csv}"],
)
def test_the_sources_the_hint_names_take_test_split(runner, tmp_path, source):
    """Each source the hint names is one validate lets test_split through for (no test_split
    error: whatever else the spec lacks, such as a model fitting the source, is another)."""
    path = write_spec(tmp_path, f"{{source: {source}, test_split: 0.2}}")
    result = runner.invoke(app, ["validate", str(path)])
    assert "data.test_split" not in result.output, result.output
