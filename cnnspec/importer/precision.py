"""A mixed-precision source → the spec's ``runtime: {mixed_precision: true}``, and what the import
report says of it.

Keras saves a model built under ``mixed_float16`` or ``mixed_bfloat16`` with that policy on each
layer (float32 weights, half-precision computation), often with a float32 output layer
(``Dense(…, dtype="float32")``, as Keras advises). No spec item holds a policy: the spec's one
setting is ``runtime: {mixed_precision: true}``, with which ``cnnspec train`` computes in
``mixed_float16`` on a GPU and ``mixed_bfloat16`` on a CPU or TPU, the output layers in float32.
That is the source's computation only on one kind of device, and only when the source's layers
are laid out the same way; the note says where it is not.
"""

from __future__ import annotations

from cnnspec.importer.graph import Graph
from cnnspec.layers.reverse import MIXED_POLICIES, Reversed, shown

#: The device on which the spec's ``runtime.mixed_precision`` picks each policy.
_DEVICE = {"mixed_float16": "a GPU", "mixed_bfloat16": "a CPU or TPU"}
#: Layers a note names before it counts the rest.
_LISTED = 3
SETTING = "runtime: {mixed_precision: true}"


def _listed(names: list[str]) -> str:
    shown_names = ", ".join(shown(n) for n in names[:_LISTED])
    rest = len(names) - _LISTED
    return shown_names + (f" and {rest} more" if rest > 0 else "")


def mixed_precision_note(graph: Graph, mapped: dict[str, Reversed]) -> str | None:
    """The report's note on the source's mixed precision, or None when no layer computes in a
    mixed policy (then the spec gets no ``runtime`` setting). A layer saved without a policy
    computes in Keras' global one when the file is loaded: float32 unless set otherwise."""
    mixed = {name: rev.policy for name, rev in mapped.items() if rev.policy in MIXED_POLICIES}
    if not mixed:
        return None
    policies = sorted({str(p) for p in mixed.values()})
    outputs = graph.outputs
    several = len(outputs) > 1
    float_outputs = [name for name in outputs if name not in mixed]
    layers = "layers" if several else "layer"
    what = " and ".join(policies)
    if float_outputs:
        if not several:
            its = "its output layer"
        elif len(float_outputs) == len(outputs):
            its = "its output layers"
        else:  # some outputs in float32, the others mixed: name the float32 ones
            its = f"its output layer{'s' if len(float_outputs) > 1 else ''} {_listed(float_outputs)}"
        what += f", {its} in float32"
    note = (
        f"the source computes in {what}: the spec gets {SETTING} (cnnspec train: mixed_float16 on "
        f"a GPU, mixed_bfloat16 on a CPU or TPU, the output {layers} in float32)"
    )
    differences = []
    if len(policies) > 1:
        differences.append("the source uses both policies")
    # float32 layers inside the model (saved so, or without a policy): mixed in the spec
    inside = [name for name in mapped if name not in outputs and name not in mixed]
    if inside:
        plural = "s" if len(inside) > 1 else ""
        differences.append(
            f"layer{plural} {_listed(inside)} compute{'' if plural else 's'} in float32 in the source, "
            "in mixed precision in the spec"
        )
    for output in outputs:
        if output in mixed:
            differences.append(
                f"the output layer {shown(output)} computes in {mixed[output]} in the source, in float32 "
                "in the spec"
            )
    if differences:
        return f"{note}, which cannot reproduce the source's policies exactly: {'; '.join(differences)}"
    policy = policies[0]
    others = next(device for name, device in _DEVICE.items() if name != policy)
    return f"{note}: the source's policy on {_DEVICE[policy]}, not on {others}"


__all__ = ["SETTING", "mixed_precision_note"]
