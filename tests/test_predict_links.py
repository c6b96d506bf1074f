"""`predict FOLDER` reads a linked sub-folder as training and `evaluate --data` read it (it was
passed over without a word: 3 of 7 images answered), each folder once: a link back up (a loop)
or a second link to a folder already read is not walked again. TensorFlow-free."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from cnnspec.reporting.images import expand_inputs


def image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4, 3), dtype="uint8")).save(path)


def test_a_linked_sub_folder_is_read_once_and_a_loop_ends(tmp_path):
    data = tmp_path / "newdata"
    for i in range(3):
        image(data / "red" / f"img{i}.png")
    for i in range(4):
        image(tmp_path / "outside" / "blue_imgs" / f"img{i}.png")
    os.symlink(tmp_path / "outside" / "blue_imgs", data / "blue")
    os.symlink(tmp_path / "outside" / "blue_imgs", data / "blue_again")  # the same folder twice
    os.symlink(data, data / "red" / "loop")  # back up: a loop
    files, notes = expand_inputs([data])
    assert sorted(p.relative_to(data).as_posix() for p in files) == [
        *(f"blue/img{i}.png" for i in range(4)),
        *(f"red/img{i}.png" for i in range(3)),
    ]
    assert notes == []


def test_a_16_bit_gray_image_is_noted_as_converted_as_an_8_bit_one_is(tmp_path):
    """`L → 3 channels` was noted of an 8-bit gray image, nothing of the same image in 16 bits
    (mode `I;16`, outside the table of modes), converted all the same."""
    from cnnspec.training.imagefiles import converted_image

    Image.fromarray(np.full((4, 4), 40000, dtype="uint16")).save(tmp_path / "g16.png")
    Image.fromarray(np.full((4, 4), 100, dtype="uint8")).save(tmp_path / "g8.png")
    assert converted_image(tmp_path / "g16.png", 3)[1] == ["I;16 → 3 channels"]
    assert converted_image(tmp_path / "g8.png", 3)[1] == ["L → 3 channels"]
    assert converted_image(tmp_path / "g16.png", 1)[1] == []
