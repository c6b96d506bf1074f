"""Backbone weights outside ``cnnspec train``: the script ``codegen --script`` writes loads a
backbone's source into the backbone's own layers (listed by name, as train and build select
them), and a damaged keras.applications file in Keras' cache is a located error naming it.

Every test makes its own specs and weight files; nothing is downloaded."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from cnnspec.cli.app import app
from cnnspec.errors import UsageError

BASE = """\
cnnspec: 1
name: base
input: {shape: [8, 8, 1]}
blocks:
  unit:
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 3, padding: same}
        id: c
      - batch_norm:
        id: bn
      - activation: relu
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: stem
  - unit: 8
    id: s1
  - unit: 8
    id: s2
  - flatten
  - dense: {units: 10, activation: softmax}
    id: head
"""

# A head whose id starts with the backbone's prefix: `body_out` is no layer of the backbone.
TOP = """\
cnnspec: 1
name: top
input: {shape: [8, 8, 1]}
model:
  - backbone: {spec: base.yaml, until: s2, weights: {from: base.weights.h5, strict: true}}
    id: body
  - global_avg_pool2d
  - dense: {units: 5, activation: softmax}
    id: body_out
data: {source: digits, classes: [5, 6, 7, 8, 9], per_class: 5}
training: {epochs: 1}
"""

# The same backbone with its weights one level down: `mid.yaml` starts from them, `nested` cuts
# `mid.yaml` (whose backbone `body_inner` is base.yaml up to s2) and gives it none of its own.
MID = """\
cnnspec: 1
name: mid
input: {shape: [8, 8, 1]}
model:
  - backbone: {spec: base.yaml, until: s2, weights: {from: base.weights.h5, strict: true}}
    id: inner
  - conv2d: {filters: 6, kernel_size: 1}
    id: neck
"""
NESTED = """\
cnnspec: 1
name: nested
input: {shape: [8, 8, 1]}
model:
  - backbone: {spec: mid.yaml, until: neck}
    id: body
  - global_avg_pool2d
  - dense: {units: 5, activation: softmax}
data: {source: digits, classes: [5, 6, 7, 8, 9], per_class: 5}
training: {epochs: 1}
"""

BACKBONE_LAYERS = (
    "body_stem",
    "body_s1_c",
    "body_s1_bn",
    "body_s1_activation_1",
    "body_s2_c",
    "body_s2_bn",
    "body_s2_activation_1",
)


def _generated(runner, spec: Path, script: Path) -> str:
    result = runner.invoke(app, ["codegen", str(spec), "--script", "-o", str(script)])
    assert result.exit_code == 0, result.output
    # (a model module says it does not load a backbone's weights; a script loads them)
    assert "does not load" not in result.output, result.output
    return script.read_text(encoding="utf-8")


#: The model's spec; its backbone's layer names (the source loads into these only); its scope.
CASES = {
    "backbone": (TOP, BACKBONE_LAYERS, "body"),
    "nested": (
        NESTED,
        tuple(name.replace("body_", "body_inner_", 1) for name in BACKBONE_LAYERS),
        "body_inner",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_the_script_loads_a_backbone_into_its_listed_layers(case, write_spec, runner, tmp_path):
    spec_text, layer_names, scope = CASES[case]
    write_spec(BASE, "base.yaml")
    write_spec(MID, "mid.yaml")
    (tmp_path / "base.weights.h5").write_bytes(b"")  # read only by the script (codegen: that it is there)
    text = _generated(runner, write_spec(spec_text), tmp_path / "train.py")
    (function,) = [
        node
        for node in ast.parse(text).body
        if isinstance(node, ast.FunctionDef) and node.name == "load_starting_weights"
    ]
    assigned, loaded = function.body[1:]  # after the docstring
    assert isinstance(assigned, ast.Assign) and ast.unparse(assigned.targets[0]) == "layers"
    assert ast.literal_eval(assigned.value) == layer_names  # body_out is not one of them
    assert ast.unparse(loaded).startswith(f"load_by_name(model, '{scope}', ")
    assert ast.unparse(loaded).endswith("strict=True, layers=layers)")
    assert "startswith" not in text.split("def layers_with_weights", 1)[1].split("\ndef ", 1)[0]


def _save_base_weights(write_spec, tmp_path: Path) -> Path:
    from cnnspec.api import build_model

    spec = write_spec(BASE, "base.yaml")
    target = tmp_path / "base.weights.h5"
    build_model(compile_spec(spec)).save_weights(str(target))
    return target


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_the_script_loads_what_build_loads_into_a_backbone(case, write_spec, runner, tmp_path, capsys):
    """The script strict-loads the 14 tensors of the backbone, as build does, and stops neither
    on nor at the head `body_out` (whose name only starts like the backbone's layers); a
    backbone's own backbone (`nested`) gets its weights in the script too."""
    from cnnspec.training.transfer_loads import plan_for_spec

    spec_text, _, scope = CASES[case]
    source = _save_base_weights(write_spec, tmp_path)
    write_spec(MID, "mid.yaml")
    spec = write_spec(spec_text)
    built = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "top.keras")])
    assert built.exit_code == 0, built.output
    assert f"loaded 14 of 14 weight tensors into {scope} from" in built.output
    script = tmp_path / "train.py"
    _generated(runner, spec, script)
    loader = importlib.util.spec_from_file_location("generated_backbone_train", script)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)  # defines functions only: main() is behind the __main__ guard
    capsys.readouterr()
    model = module.build_model()
    module.load_starting_weights(model)  # a strict misfit would raise SystemExit
    assert f"loaded 14 of 14 weight tensors from {source}" in capsys.readouterr().out
    (plan,) = plan_for_spec(compile_spec(spec))
    assert (plan.scope, plan.loaded, plan.total) == (scope, 14, 14)
    for layer, index, array in plan.assign:
        np.testing.assert_array_equal(model.get_layer(layer).weights[index].numpy(), array)


# -- a damaged keras.applications file in Keras' cache ----------------------------------------
def _damaged_keras2_file(path: Path) -> Path:
    """Keras 2's HDF5 layout whose `conv_bn` group lists a `beta:0` it does not hold."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [b"conv", b"conv_bn"]
        group = handle.create_group("conv")
        group.attrs["weight_names"] = [b"conv/kernel:0"]
        group.create_dataset("conv/kernel:0", data=np.full((3, 3, 3, 16), 0.5, "float32"))
        group = handle.create_group("conv_bn")
        names = ["gamma", "beta", "moving_mean", "moving_variance"]
        group.attrs["weight_names"] = [f"conv_bn/{n}:0".encode() for n in names]
        for n in names:
            if n != "beta":
                group.create_dataset(f"conv_bn/{n}:0", data=np.ones(16, "float32"))
    return path


def test_a_keras2_file_missing_a_listed_weight_is_a_weights_error(tmp_path):
    from cnnspec.spec.weights import parse_source
    from cnnspec.training.transfer_read import read_source

    path = _damaged_keras2_file(tmp_path / "models" / "weights.h5")
    source = parse_source("imagenet", base_dir=tmp_path)
    with pytest.raises(UsageError) as caught:
        read_source(source, imagenet_file=path)
    message = str(caught.value)
    assert str(path) in message and "'conv_bn/beta:0'" in message
    assert caught.value.hint == "delete the file so Keras downloads it again"


@pytest.mark.slow
def test_build_refuses_a_damaged_imagenet_file_in_the_cache_naming_it(
    write_spec, runner, tmp_path, monkeypatch
):
    from cnnspec.training import transfer_imagenet

    def no_download(found):
        raise AssertionError(f"downloaded {found.name}")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(transfer_imagenet, "download", no_download)
    name = transfer_imagenet.application_file("MobileNetV3Small", False, (32, 32, 3)).name
    cached = _damaged_keras2_file(tmp_path / "keras" / "models" / name)
    spec = write_spec(
        "cnnspec: 1\nname: bbnet\ninput: {shape: [32, 32, 3]}\nmodel:\n"
        "  - backbone: {spec: 'zoo:mobilenet_v3_small', until: conv_bn, "
        "vars: {include_top: false, input_shape: [32, 32, 3]}, weights: imagenet}\n"
        "    id: body\n  - global_avg_pool2d\n  - dense: {units: 10, activation: softmax}\n"
    )
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "bb.keras")])
    assert result.exit_code == 1, result.output  # a located spec error, not an internal error (3)
    assert "spec.yaml:5:" in result.output and str(cached) in result.output
    assert "'conv_bn/beta:0'" in result.output
    assert "delete the file so Keras downloads it again" in result.output
    assert "internal error" not in result.output and not (tmp_path / "bb.keras").exists()


@pytest.mark.slow
def test_imagenet_with_the_top_asks_for_the_file_of_the_input_size(tmp_path):
    """MobileNet's ImageNet files differ by input size with the top too (…_1.0_96.h5); a family
    whose top takes only its default size (ResNet50) gets that size's file, which fits any size.
    The generated script asks keras.applications the same way."""
    from cnnspec.training import transfer_imagenet

    transfer_imagenet.application_file.cache_clear()
    mobile = transfer_imagenet.application_file("MobileNetV2", True, (96, 96, 3)).name
    assert mobile == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96.h5"
    resnet = transfer_imagenet.application_file("ResNet50", True, (96, 96, 3)).name
    assert resnet == transfer_imagenet.application_file("ResNet50", True, (224, 224, 3)).name
    spec = tmp_path / "m.yaml"
    spec.write_text("extends: zoo:mobilenet_v2\nvars: {input_shape: [96, 96, 3]}\nweights: imagenet\n")
    text = generate_code(compile_spec(spec), script=True, output=tmp_path / "train.py").text
    assert "imagenet_model(keras.applications.MobileNetV2, True, (96, 96, 3))" in text
    namespace: dict = {}
    exec(text[text.index("def imagenet_model(") :].split("\n\n\n")[0], namespace)
    seen = []

    def constructor(**kwargs):
        seen.append(kwargs["input_shape"])
        if kwargs["input_shape"] is not None:
            raise ValueError("the top takes 224×224 only")
        return "model"

    assert namespace["imagenet_model"](constructor, True, (96, 96, 3)) == "model"
    assert seen == [(96, 96, 3), None]


def test_the_scripts_imagenet_load_stops_with_what_to_do_not_a_traceback(write_spec):
    """Offline, the generated script printed three chained tracebacks ending in Keras' "URL fetch
    failure" where cnnspec train names the cache folder to put the file in; an input keras.
    applications has no weights for was a traceback too. Both stop it with exit status 1 and
    train's words now. (The script's functions run here without TensorFlow: a stand-in
    constructor raises what keras.applications raises.)"""
    from tests.test_listing_edges import script_functions

    spec = write_spec(
        "cnnspec: 1\nname: zb\ninput: {shape: [32, 32, 3]}\nmodel:\n"
        '  - backbone: {spec: "zoo:mobilenet_v2", until: stage2, vars: {include_top: false}, '
        "weights: imagenet}\n    id: body\n  - global_avg_pool2d\n"
        "  - dense: {units: 3, activation: softmax}\n"
    )
    imagenet_model = script_functions(spec)["imagenet_model"]

    def MobileNetV2(**kwargs):
        raise Exception("URL fetch failure on https://example.org/w_no_top.h5: None -- [Errno -2]\nmore")

    with pytest.raises(SystemExit) as caught:
        imagenet_model(MobileNetV2, False, (32, 32, 3))
    assert str(caught.value) == (
        "weights: expected keras.applications' ImageNet weights file in Keras' cache or "
        "downloadable; the download failed: URL fetch failure on https://example.org/w_no_top.h5: "
        "None -- [Errno -2]\ndownload the file on a machine with network access and place it in "
        "Keras' cache folder: $KERAS_HOME/models, by default ~/.keras/models"
    )

    def Xception(**kwargs):
        raise ValueError("Input size must be at least 71x71; Received: input_shape=(32, 32, 3)")

    with pytest.raises(SystemExit) as caught:
        imagenet_model(Xception, False, (32, 32, 3))
    assert str(caught.value).startswith(
        "weights: keras.applications has no ImageNet weights for this model: Input size must "
        "be at least 71x71; Received: input_shape=(32, 32, 3)\ngive the model an input"
    )
