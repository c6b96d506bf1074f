"""The merges a ``residual`` or ``parallel`` accepts are the registry's: every kind with the
``combines`` trait (add, multiply, average, max, min, concat), never ``subtract``.

Each new merge is checked end to end: TensorFlow-free shapes and parameters, the error a bad
merge word gets (the registry's list and a did-you-mean, located), the schema's enum, the
editor's completion, the generated code (its own replay, and slow: the model it builds against
the builder's), and ``cnnspec import`` folding a fork joined by one into a combinator item.
"""

from __future__ import annotations

from typing import Any

import pytest

from cnnspec.api import compile_text
from cnnspec.backends.python_emitter import generate_code
from cnnspec.errors import SpecError
from cnnspec.importer import import_source
from cnnspec.importer.source import Source
from cnnspec.layers.registry import REGISTRY, combinator_merges
from cnnspec.spec.schema import block_library_schema, json_schema
from tests.conftest import FIXTURES, load_module
from tests.test_extra_kinds import _functional, _input_layer, _layer
from tests.test_lsp_completion_fixes import HEAD, complete_at, labels

#: The merges the registry gained after the combinators were written (add and concat were
#: their only words before): each must now work in a ``parallel`` and a ``residual``.
NEW_MERGES = ("multiply", "average", "max", "min")
ELEMENTWISE = tuple(name for name in combinator_merges() if REGISTRY[name].combines == "elementwise")


def _spec(*lines: str) -> str:
    """A spec of an 8×8×3 input whose model is ``lines`` (already indented as list items)."""
    return "cnnspec: 1\nname: merges\ninput: {shape: [8, 8, 3]}\nmodel:\n" + "".join(f"{x}\n" for x in lines)


def _parallel(merge: str) -> str:
    # branches of 3·4 + 4 = 16 and 27·4 + 4 = 112 parameters, both 8×8×4
    return _spec(
        "  - parallel:",
        "      branches:",
        "        - [conv2d: {filters: 4, kernel_size: 1}]",
        "        - [conv2d: {filters: 4, kernel_size: 3, padding: same}]",
        f"      merge: {merge}",
        "  - flatten",
    )


def _residual(merge: str, filters: int) -> str:
    # a body of 27·f + f parameters; with f ≠ 3 the `auto` shortcut of an element-wise merge is
    # projected (1×1 conv: 3·f + f, batch norm: 4·f of which 2·f trainable)
    return _spec(
        "  - residual:",
        f"      body: [conv2d: {{filters: {filters}, kernel_size: 3, padding: same}}]",
        f"      merge: {merge}",
        "      activation: relu",
        "  - flatten",
    )


#: case → (spec, the merge layer's output shape, total parameters, trainable parameters, kinds)
CASES: dict[str, tuple[str, tuple[int, ...], int, int, list[str]]] = {}
for _merge in NEW_MERGES:
    CASES[f"parallel-{_merge}"] = (_parallel(_merge), (8, 8, 4), 128, 128, ["conv2d", "conv2d", _merge])
    CASES[f"residual-{_merge}-projected"] = (
        _residual(_merge, 8),
        (8, 8, 8),
        224 + 32 + 32,
        224 + 32 + 16,
        ["conv2d", "conv2d", "batch_norm", _merge],
    )
    CASES[f"residual-{_merge}-identity"] = (_residual(_merge, 3), (8, 8, 3), 84, 84, ["conv2d", _merge])
# concat, as before: a residual's `auto` shortcut stays the entry, whatever its channels
CASES["residual-concat"] = (_residual("concat", 8), (8, 8, 11), 224, 224, ["conv2d", "concat"])


def _merge_node(text: str) -> Any:
    compiled = compile_text(text)
    (node,) = [n for n in compiled.ir.nodes if REGISTRY[n.kind].combines is not None]
    return compiled, node


def test_the_combinators_merge_with_every_combining_kind_and_nothing_else():
    """The trait, not a list: the merges whose inputs play one role; subtract's do not."""
    assert set(combinator_merges()) == {"add", "multiply", "average", "max", "min", "concat"}
    assert REGISTRY["subtract"].combines is None
    assert {REGISTRY[n].combines for n in combinator_merges()} == {"elementwise", "axis"}
    assert REGISTRY["concat"].combines == "axis"
    assert set(ELEMENTWISE) == {"add", "multiply", "average", "max", "min"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_combinator_merge_validates_tensorflow_free_with_its_shape_and_parameters(case):
    text, shape, params, trainable, kinds = CASES[case]
    compiled, node = _merge_node(text)
    assert node.kind == kinds[-1]
    assert node.shape == shape
    assert [n.kind for n in compiled.ir.nodes][: len(kinds)] == kinds
    assert (compiled.ir.totals.params, compiled.ir.totals.trainable) == (params, trainable)


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_code_writes_the_merge_by_its_keras_class(case):
    """The printer writes the merge the resolver made, whatever its kind; ``generate_code``
    replays the code against the IR (verify_model) before it returns."""
    compiled, node = _merge_node(CASES[case][0])
    code = generate_code(compiled, format_code=False).text
    assert f"layers.{REGISTRY[node.kind].keras_class}(" in code, code


@pytest.mark.parametrize(
    ("combinator", "written", "meant"),
    [
        ("parallel", "maximum", "max"),
        ("parallel", "Average", "average"),
        ("residual", "minimum", "min"),
        ("residual", "mul", None),
        ("parallel", "subtract", None),
    ],
)
def test_a_bad_merge_gets_the_registrys_list_and_a_did_you_mean_located(combinator, written, meant):
    text = _parallel(written) if combinator == "parallel" else _residual(written, 3)
    with pytest.raises(SpecError) as caught:
        compile_text(text)
    errors = [d for d in caught.value.errors if d.severity == "error"]
    assert len(errors) == 1, [e.message for e in errors]
    (error,) = errors
    choices = ", ".join(combinator_merges())
    assert error.message == f"expected merge: one of {choices}; received {written!r}"
    assert error.path == f"model[0].{combinator}.merge"
    assert error.loc is not None and error.loc.line == (9 if combinator == "parallel" else 7)
    if written == "subtract":  # a merge kind of its own: how to write it
        assert error.hint == (
            "`subtract` merges as an item of its own: give the layers to merge ids and write "
            "`- subtract:` then `  inputs: [a, b]` on the next line"
        )
        # written as the hint says, it compiles (its first wording was itself refused)
        as_said = (
            "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nmodel:\n"
            "  - conv2d: {filters: 2, kernel_size: 1}\n    id: a\n"
            "  - conv2d: {filters: 2, kernel_size: 1}\n    id: b\n    inputs: [input]\n"
            "  - subtract:\n    inputs: [a, b]\n  - flatten\n"
        )
        assert compile_text(as_said).ir.totals.params == 16
    elif meant is None:
        assert error.hint is None or "subtract" not in error.hint
    else:
        assert error.hint == f"did you mean `{meant}`?"


def test_the_schemas_enum_is_the_registrys_merges():
    def enums(node: Any) -> list[list[str]]:
        """The ``merge`` enums of the residual and parallel schemas under ``node``."""
        found: list[list[str]] = []
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("residual", "parallel") and isinstance(value, dict) and "properties" in value:
                    found.append(value["properties"]["merge"]["anyOf"][0]["enum"])
                found += enums(value)
        elif isinstance(node, list):
            for value in node:
                found += enums(value)
        return found

    for schema in (json_schema(), block_library_schema()):
        found = enums(schema)
        assert len(found) == 2
        assert all(enum == list(combinator_merges()) for enum in found)


@pytest.mark.parametrize("broken", [False, True])
def test_completion_offers_the_merges_for_merge(broken: bool):
    """``merge:`` of a parallel or residual, block or flow style, the text loading or not."""
    tail = "  - dense: {units: 4\n" if broken else ""
    block = HEAD + "  - parallel:\n      branches: [[relu], [relu]]\n      merge: \n" + tail
    assert labels(complete_at(block, "merge: \n", 7)) == list(combinator_merges())
    flow = HEAD + "  - residual: {body: [relu], merge: }\n" + tail
    assert labels(complete_at(flow, "merge: }", 7)) == list(combinator_merges())


# -- cnnspec import: a fork joined by one of the merges is a combinator item ----------------------
def _forks() -> dict[str, Any]:
    """A saved Functional configuration of a 6×4×2 input: an average of three branches (a
    parallel: two would be a residual with a shortcut list, as for add), a maximum of the
    entry and a branch, a minimum of a branch and the entry (Keras' order)."""
    layers = [
        _input_layer(),
        _layer("LeakyReLU", "left", ["in"], negative_slope=0.2),
        _layer("LeakyReLU", "middle", ["in"], negative_slope=0.5),
        _layer("LeakyReLU", "right", ["in"], negative_slope=0.3),
        _layer("Average", "mean", ["left", "middle", "right"]),
        _layer("LeakyReLU", "body", ["mean"], negative_slope=0.1),
        _layer("Maximum", "high", ["mean", "body"]),
        _layer("LeakyReLU", "body_2", ["high"], negative_slope=0.4),
        _layer("Minimum", "low", ["body_2", "high"]),
        _layer("Flatten", "flat", ["low"], data_format="channels_last"),
    ]
    return _functional("forks", layers, "flat")


def test_forks_joined_by_the_new_merges_import_as_combinator_items():
    text = import_source(Source("forks", _forks()), folding=False).text
    assert "- parallel:" in text and "merge: average" in text, text
    assert text.count("- residual:") == 2 and "merge: max" in text and "merge: min" in text, text
    assert "inputs:" not in text, text  # no layer needed ids: every fork folded
    compiled = compile_text(text)
    kinds = [n.kind for n in compiled.ir.nodes]
    assert kinds == [
        *["leaky_relu"] * 3,
        "average",
        "leaky_relu",
        "max",
        "leaky_relu",
        "min",
        "flatten",
    ]
    assert compiled.ir.nodes[-1].shape == (48,)


@pytest.mark.parametrize("join", ["Average", "Maximum", "Minimum", "Multiply"])
def test_a_fork_folds_as_it_did_for_add_and_concat_before(join):
    """Without the trait only Add and Concatenate folded: the merge was written with ids."""
    config = _forks()
    config["config"]["layers"][4]["class_name"] = join
    text = import_source(Source("forks", config), folding=False).text
    meant = REGISTRY[next(k for k in combinator_merges() if REGISTRY[k].keras_class == join)]
    assert f"merge: {meant.name}" in text, text


# -- TensorFlow: the builder, the generated code and a saved model ---------------------------------
@pytest.mark.slow
def test_the_built_models_and_the_generated_codes_models_match(tmp_path):
    """Per case: every layer of the builder's model has the IR's shape and parameter count,
    and the generated module builds the same layers (names, classes, configurations,
    weights) and outputs, compared in this process (one TensorFlow process at a time)."""
    from cnnspec.api import build_model

    compare = load_module(FIXTURES / "codegen" / "compare_models.py", "compare_models").compare
    for index, case in enumerate(sorted(CASES)):
        text = CASES[case][0]
        compiled = compile_text(text)
        model = build_model(compiled)
        for node in compiled.ir.nodes:
            layer = model.get_layer(node.name)
            assert tuple(layer.output.shape[1:]) == node.shape, (case, node.name)
            assert layer.count_params() == node.counts.params, (case, node.name)
        assert model.count_params() == compiled.ir.totals.params, case
        spec_path = tmp_path / f"{case}.yaml"
        spec_path.write_text(text, encoding="utf-8")
        module_path = tmp_path / f"{case.replace('-', '_')}_model.py"
        module_path.write_text(generate_code(compiled).text, encoding="utf-8")
        result = compare(str(spec_path), load_module(module_path, f"generated_{index}"), True)
        assert result["ok"], (case, result["problems"])


@pytest.mark.slow
def test_a_saved_model_with_merged_forks_imports_as_combinators_output_for_output(tmp_path):
    import keras
    import numpy as np

    from cnnspec.api import build_model
    from cnnspec.importer.output import run_import
    from tests.test_import import assert_same_model

    inputs = keras.Input((8, 6, 3), name="image")
    stem = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    left = keras.layers.Conv2D(4, 1, name="left")(stem)
    middle = keras.layers.Conv2D(4, 3, padding="same", name="middle")(stem)
    right = keras.layers.Conv2D(4, 5, padding="same", name="right")(stem)
    mean = keras.layers.Average(name="mean")([left, middle, right])
    body = keras.layers.Conv2D(4, 3, padding="same", name="body")(mean)
    high = keras.layers.Maximum(name="high")([body, mean])  # f(x) first: still a residual
    flat = keras.layers.Flatten(name="flat")(high)
    source = keras.Model(inputs, keras.layers.Dense(3, name="head")(flat), name="forks")
    path = tmp_path / "forks.keras"
    source.save(path)
    out = tmp_path / "forks.yaml"
    imported = run_import(str(path), out, weights=True)
    text = out.read_text(encoding="utf-8")
    assert "- parallel:" in text and "merge: average" in text, text
    assert "- residual:" in text and "merge: max" in text, text
    model = build_model(compile_text(text.replace("weights: forks.weights.h5\n", "")))
    model.load_weights(tmp_path / "forks.weights.h5")
    assert_same_model(source, model, imported.names)
    x = np.random.default_rng(0).normal(size=(4, 8, 6, 3)).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0), source.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert model.count_params() == source.count_params()


def test_a_broadcasting_multiply_stays_layers_with_ids():
    """Squeeze-and-excitation's ``x * gate`` (a 1×1 gate broadcast over the map, as Keras saved
    the shapes): a residual's ``auto`` shortcut would be projected to the gate's shape, so the
    fork is written with ids, as before multiply was a combinator's merge."""
    gate = _layer("GlobalAveragePooling2D", "gate", ["in"], data_format="channels_last", keepdims=True)
    scaled = _layer("Multiply", "scaled", ["in", "gate"])
    scaled["build_config"] = {"input_shape": [[None, 6, 4, 2], [None, 1, 1, 2]]}
    config = _forks()
    config["config"]["layers"] = [config["config"]["layers"][0], gate, scaled]
    config["config"]["output_layers"] = [["scaled", 0, 0]]
    text = import_source(Source("forks", config), folding=False).text
    assert "- residual:" not in text and "inputs: [input, gate]" in text, text
    assert compile_text(text).ir.nodes[-1].shape == (6, 4, 2)


def test_a_fork_whose_shapes_were_not_saved_is_a_residual_with_an_identity_shortcut():
    """Without ``build_config`` (a configuration written by hand or stripped) the importer cannot
    tell a broadcast: the residual says ``shortcut: identity``, which is the source either way
    (before: the ``auto`` shortcut was projected to the gate's shape and the import refused
    its own spec, "4 layers; the source has 2")."""
    gate = _layer("GlobalAveragePooling2D", "gate", ["in"], data_format="channels_last", keepdims=True)
    config = _forks()
    config["config"]["layers"] = [
        config["config"]["layers"][0],
        gate,
        _layer("Multiply", "scaled", ["in", "gate"]),
    ]
    config["config"]["output_layers"] = [["scaled", 0, 0]]
    text = import_source(Source("forks", config), folding=False).text
    assert "shortcut: identity" in text and "merge: multiply" in text, text
    nodes = compile_text(text).ir.nodes
    assert [n.kind for n in nodes] == ["global_avg_pool2d", "multiply"] and nodes[-1].shape == (6, 4, 2)
