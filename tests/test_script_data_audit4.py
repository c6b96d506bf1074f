"""``codegen --script``'s train.py beside ``cnnspec train`` where the data has holes: a labels CSV
whose rows lack a cell, name a missing image or lack a column (refused by both, never a
traceback, an image labelled with the empty class "" or a missing file left out as a bad one).

The scripts' data functions run without TensorFlow (:func:`tests.test_listing_edges.script_loader`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_listing_edges import listing_error, make_images, script_loader

CSV_SOURCE = "{source: {csv: pics/labels.csv}, on_bad_file: skip}"
NO_CELL = "an image path and a label on line 8"


def labels_csv(tmp_path: Path, extra: str = "", header: str = "file,label") -> Path:
    """pics/labels.csv naming six images of the classes a and b, then the rows ``extra``."""
    files = make_images(tmp_path / "pics", {"a": 3, "b": 3})
    rows = "".join(f"{p.parent.name}/{p.name},{p.parent.name}\n" for p in files)
    path = tmp_path / "pics" / "labels.csv"
    path.write_text(f"{header}\n{rows}{extra}")
    return path


@pytest.mark.parametrize(
    ("extra", "header", "trained", "script"),
    [
        # an empty label made the image one of a class "" (b/extra.png exists); an empty path read
        # the CSV's folder as a bad image file, which on_bad_file: skip left out
        ("b/extra.png\n", "file,label", NO_CELL, NO_CELL),
        (",a\n", "file,label", NO_CELL, NO_CELL),
        # a missing image was a bad file, left out under on_bad_file: skip
        ("c/new.png,a\n", "file,label", "every image the CSV names to exist", "to exist; 1 do not: line 8: "),
        # a missing column was a KeyError's traceback
        ("", "file,kind", "expected a column 'label' in labels.csv", "expected a column 'label' in "),
    ],
    ids=["no-label", "no-path", "missing-image", "no-column"],
)
def test_the_script_refuses_the_csv_rows_cnnspec_train_refuses(tmp_path, extra, header, trained, script):
    path = labels_csv(tmp_path, extra, header)
    (tmp_path / "pics" / "b" / "extra.png").write_bytes((tmp_path / "pics" / "b" / "b0.png").read_bytes())
    assert trained in listing_error(tmp_path, CSV_SOURCE).message
    with pytest.raises(SystemExit, match=script):
        script_loader(tmp_path, CSV_SOURCE)(path)


def test_the_script_refuses_a_csv_of_a_header_alone(tmp_path):
    path = labels_csv(tmp_path)
    load_data = script_loader(tmp_path, CSV_SOURCE)
    path.write_text("file,label\n")
    with pytest.raises(SystemExit, match=r"expected at least one row of images in .* it has only a header"):
        load_data(path)
