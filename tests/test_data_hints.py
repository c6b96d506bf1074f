"""Hints that name what can be done where the error is met: a ``--data`` CSV missing a column
is told to rename its header (evaluate has no option for the spec's column names), and
``test_split`` beside a source with its own test set names every source that takes it."""

from __future__ import annotations

import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.reporting.data_option import parse_source, with_source
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


# -- --data of class labels for a run that is no classifier ----------------------------------------
MULTILABEL_RUN = (
    "cnnspec: 1\nname: ml\ninput: {shape: [8, 8, 3]}\nmodel:\n  - global_avg_pool2d\n"
    "  - dense: {units: 3, activation: sigmoid}\ndata: {source: {images: imgs, labels: labels.csv}}\n"
    "training: {epochs: 1, batch_size: 8}\n"
)


@pytest.mark.parametrize(
    ("data", "received"),
    [("test.csv", "the CSV test.csv"), ("pics", "the folder pics"), ("digits", "the dataset digits")],
)
def test_data_of_class_labels_for_a_multilabel_run_is_pointed_at_an_npz(tmp_path, data, received):
    """Before: a CSV was told to rename its columns to 'file' and 'label', and then that "the data
    has class targets"; a folder was hinted at ``data.source: shapes``, a spec key."""
    from cnnspec.errors import UsageError
    from cnnspec.reporting.data_option import refuse_class_only_data

    make_images(tmp_path / "pics", {"a": 2})
    (tmp_path / "test.csv").write_text("file,a,b,c\npics/a/a0.png,1,0,1\n")
    (tmp_path / "spec.yaml").write_text(MULTILABEL_RUN)
    tasks = training_config(compile_spec(tmp_path / "spec.yaml")).tasks
    with pytest.raises(UsageError) as info:
        refuse_class_only_data(tasks, parse_source(data if data == "digits" else str(tmp_path / data)))
    assert str(info.value) == (
        "expected --data to be an .npz file of test images and targets for the multilabel output "
        f"dense_1; received {received}, which holds class labels only"
    )
    assert info.value.hint == (
        "save the test images as x_test and their targets as y_test (multilabel: integer 0/1 labels "
        "(n, K)) in an .npz file and pass --data FILE.npz"
    )


def test_data_of_class_labels_for_a_classifier_is_read(tmp_path):
    from cnnspec.reporting.data_option import refuse_class_only_data

    make_images(tmp_path / "pics", {"a": 2, "b": 2})
    tasks = training_config(compile_spec(write_spec(tmp_path, "{source: {directory: pics}}"))).tasks
    for data in (str(tmp_path / "pics"), "digits"):
        assert refuse_class_only_data(tasks, parse_source(data)) is None
