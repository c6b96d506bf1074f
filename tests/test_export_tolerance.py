"""The float exports' tolerance (cnnspec/export/verification.py), and what each format lacks to
run a layer (a kind's ``export_gap``): plain NumPy and the registry, no TensorFlow."""

from __future__ import annotations

import numpy as np

from cnnspec.export.verification import FLOAT_RTOL, FLOAT_TOLERANCE, tolerance_excess, tolerance_rule
from cnnspec.layers import REGISTRY


def test_outputs_in_the_hundreds_are_held_to_their_magnitude() -> None:
    """A regression answering 138.8 differs by 4.4e-4 in float32 arithmetic, correctly: within
    1e-4 + 1e-4 × 138.8, also where the worst value is a small one computed from large ones."""
    keras = [np.array([[24.8], [-48.0], [138.8], [1.9185]], dtype="float32")]
    export = [keras[0] + np.array([[4.4e-4], [-1e-4], [3e-4], [-5e-4]], dtype="float32")]
    excess, where = tolerance_excess(keras, export, FLOAT_TOLERANCE, FLOAT_RTOL)
    assert excess < 0.4 and where.startswith("at (3, 0): Keras 1.9185, the export 1.918")
    wrong = [keras[0] + np.array([[0.0], [0.0], [0.05], [0.0]], dtype="float32")]
    excess, where = tolerance_excess(keras, wrong, FLOAT_TOLERANCE, FLOAT_RTOL)
    assert excess > 3 and where == "at (2, 0): Keras 138.8, the export 138.85"


def test_probabilities_keep_the_absolute_bound() -> None:
    keras = [np.array([[0.2, 0.8]], dtype="float32"), np.array([[300.0]], dtype="float32")]
    export = [keras[0] + np.float32(2e-4), keras[1]]
    excess, where = tolerance_excess(keras, export, FLOAT_TOLERANCE, FLOAT_RTOL)
    assert round(excess, 1) == 2.0 and where.startswith("output 0 at (0, 0): Keras 0.2, the export 0.2002")
    assert tolerance_rule(1e-4, 1e-4) == (
        "|export - Keras| <= 0.0001 + 0.0001 × the output's largest |Keras| value (0.0001 alone "
        "for an output whose Keras values all lie within [0, 1]: probabilities)"
    )


def test_what_onnx_and_tflite_lack_of_a_resize() -> None:
    gap = REGISTRY["resizing"].export_gap
    assert gap is not None
    assert gap({"interpolation": "area"}, "onnx") == (
        "ONNX's Resize has no area interpolation (the converter approximates it)"
    )
    assert gap({"interpolation": "bicubic"}, "tflite") == (
        "TFLite has no bicubic resize (its resizes are bilinear and nearest)"
    )
    assert gap({"interpolation": "bilinear"}, "tflite") is None
    assert gap({"interpolation": "bilinear"}, "onnx") is None
    # tf2onnx maps bicubic on ONNX's cubic mode, which answers otherwise (a 16 → 23 resize: 8.6e-4)
    assert gap({"interpolation": "bicubic"}, "onnx").startswith("ONNX's cubic Resize does not compute")
    # upsampling2d takes the same interpolations, with the same gaps (its nearest default has none)
    assert REGISTRY["upsampling2d"].export_gap is gap
    assert gap({"interpolation": "nearest"}, "tflite") is None


def test_the_printed_tolerance_says_what_each_output_was_checked_within(tmp_path) -> None:
    """`export` printed "tolerance 0.0001 + 0.0001 × max |Keras|" for every export, where an
    output whose Keras values all lie within [0, 1] (probabilities, a mask) is checked within
    1e-4 alone (the record's tolerance_rule, README): the line says what was checked, output by
    output where they differ."""
    from cnnspec.cli.export import tolerance_text
    from cnnspec.export.exporter import ExportResult
    from cnnspec.export.verification import absolute_only

    keras = [np.array([[0.2, 0.8]]), np.array([[300.0, np.nan]]), np.array([[-0.5]])]
    assert absolute_only(keras) == [True, False, False]

    def said(relative: list[tuple[str, bool]], tolerance: float | None = FLOAT_TOLERANCE) -> str:
        result = ExportResult(
            format="onnx", path=tmp_path / "m.onnx", source=tmp_path / "m.keras", quantize=None,
            max_abs_diff=1e-6, top1_agreement=1.0, tolerance=tolerance, batch=8, seconds=1.0,
            size_bytes=1, runtime="onnxruntime", rtol=FLOAT_RTOL if tolerance else None, relative=relative,
        )  # fmt: skip
        return tolerance_text(result)

    assert said([("output 0", False)]) == " (tolerance 0.0001)"
    assert said([("count", True)]) == " (tolerance 0.0001 + 0.0001 × max |Keras|)"
    assert said([("mask", False), ("count", True)]) == (
        " (tolerance mask: 0.0001; count: 0.0001 + 0.0001 × max |Keras|)"
    )
    assert said([("a", False), ("b", False)]) == " (tolerance 0.0001)"
    assert said([], tolerance=None) == ""  # (a quantized export: its decision agreement instead)
