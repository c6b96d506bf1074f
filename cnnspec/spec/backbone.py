"""The ``backbone`` item: another spec's model, up to a cut point, as one item of this model.

::

    - backbone: {spec: zoo:resnet50, until: conv5, vars: {include_top: false}, weights: imagenet}
      id: body

``spec`` is a zoo model or a spec file, relative to the file that names it; like an ``extends``
file it must stay inside the spec's folder (the packaged zoo excepted) unless ``allow_outside``
(``--allow-outside``), and its resolved path counts (a symbolic link out is refused);
``vars`` sets vars the backbone spec declares (values may use this spec's vars); ``until``
names the layer whose output is the backbone's output: an id of the backbone's model or a
hierarchical name (``stem.bn``); the layers after it are left out silently. Without
``until`` the backbone's (single) output is used.

The backbone is resolved by a second :class:`~cnnspec.spec.resolve.Resolver` over the other
document that writes into this resolver's graph: its layers become ordinary nodes whose names
start with the item's scope (``body_`` for ``id: body``, ``backbone_1_`` without an id), its
input is the tensor the item receives (the backbone spec's own ``input`` is not used), and its
ids are reachable from outside as ``body.conv4``. Errors inside the backbone are located in its
file with a note naming the item. Its ``weights`` source is loaded into its layers only
(:mod:`cnnspec.training.transfer`), matched without the scope prefix. Nothing here imports
TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import Note, SpecError, did_you_mean, format_path, spelled
from cnnspec.fileio import user_path
from cnnspec.ir import ancestors
from cnnspec.spec.varrefs import BACKBONE_SECTIONS, vars_read_by

if TYPE_CHECKING:
    from cnnspec.errors import SpecPath
    from cnnspec.ir import Node
    from cnnspec.spec.loader import SourceDoc
    from cnnspec.spec.resolve import Resolver
    from cnnspec.spec.scope import Scope

KIND = "backbone"
FIELDS = {"spec": True, "until": False, "vars": False, "weights": False}
EXAMPLE = "backbone: {spec: zoo:resnet50, until: conv5, weights: imagenet}"
MAX_DEPTH = 4  # backbones of backbones
#: Resolver state that enclosing items push for every layer emitted inside them (the item flag
#: ``trainable: false`` of the freezing work): shared with the backbone's resolver, so the flag
#: on a backbone item freezes its layers like those of any item.
SHARED_STACKS = ("trainable",)


def cut_points(doc: SourceDoc) -> list[str]:
    """The ids of ``doc``'s top-level model items that are always there (no ``when``; written
    out, not computed; an id inside a ``repeat`` or block is not one, a ``repeat`` item's own id
    is), in model order: where a backbone item's
    ``until:`` can cut that spec's model (``until: conv4``), and through which it reaches the
    ids inside them (``stem.bn``). ``cnnspec``'s docs and the editor's completion list
    them."""
    model = doc.data.get("model")
    items = model if isinstance(model, list) else []
    return [
        item["id"]
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and "${" not in item["id"]
        and "when" not in item
    ]


def _layer_named(nodes: list[Node], prefix: str, name: str) -> str | None:
    """The tensor of the backbone's layer ``name`` (as its own spec names it, without the
    item's ``prefix``): a cut inside an item, where no id reaches (EfficientNet's
    ``block6a_expand_activation`` in a repeat), by the name keras.applications gives it too."""
    return next((node.name for node in nodes if node.name == f"{prefix}{name}"), None)


def instance_output(nodes: list[Node], depth: int, name: str) -> str | None:
    """The output of the block instance (or other named group) ``name`` of the backbone,
    ``a.b`` for one nested in another (as ``cnnspec inspect`` groups the layers; the groups
    start at ``depth`` of a node's group): the tensor of its layers that a later layer outside
    it takes, or its last layer's (the backbone's last block). ``None`` if it is no group or
    ends in several tensors. MobileNetV3's ``expanded_conv_2``, an id inside a repeat, which no
    id lookup reaches."""
    wanted = _group_path(name)
    inside = {node.name for node in nodes if node.group[depth : depth + len(wanted)] == wanted}
    if not inside:
        return None
    taken = {i for node in nodes if node.name not in inside for i in node.inputs if i in inside}
    if len(taken) > 1:
        return None
    return taken.pop() if taken else next(node.name for node in reversed(nodes) if node.name in inside)


def block_names(nodes: list[Node], depth: int = 0) -> list[str]:
    """The block calls (and other named groups) of a backbone's layers that ``until:`` can cut
    at (:func:`instance_output`), in model order, ``a.b`` for one in another; the groups start
    at ``depth`` of a node's group. An iteration of a carrying repeat (``st[1]``) is none."""
    names: dict[str, None] = {}
    for node in nodes:
        for end in range(depth + 1, len(node.group) + 1):
            if node.group[end - 1].endswith("]"):  # (`st[1]`: the resolver's group of an iteration)
                break
            names.setdefault(".".join(node.group[depth:end]))
    return list(names)


def _group_path(name: str) -> tuple[str, ...]:
    """The groups ``name`` descends through: ``a.b``, or ``a/b`` as ``cnnspec inspect`` shows it."""
    return tuple(name.replace("/", ".").split("."))


def _instance_done(nodes: list[Node], depth: int, name: str) -> bool:
    """Whether the group ``name`` (:func:`instance_output`) has layers and a later layer that
    is outside it: the walk of the backbone may stop there."""
    wanted = _group_path(name)
    started = False
    for node in nodes:
        inside = node.group[depth : depth + len(wanted)] == wanted
        if started and not inside:
            return True
        started = started or inside
    return False


def _crossing(nodes: list[Node], needed: set[str], output: str) -> Node | None:
    """The first layer a cut drops that takes a kept tensor other than the cut's own
    (``output``), or ``None``: then the cut is a boundary that everything kept reaches the rest
    through, and Keras orders the kept layers of the cut model as it orders them in the whole
    one (by depth; every depth shifts by the cut's). A cut inside a block (a body layer whose
    shortcut is dropped, or the shortcut without the body) changes that order."""
    return next(
        (
            node
            for node in nodes
            if node.name not in needed and any(i in needed and i != output for i in node.inputs)
        ),
        None,
    )


def _base_dir(resolver: Resolver, path: SpecPath) -> Path:
    loc = resolver.loc(path)
    if loc is not None and not loc.file.startswith("<"):
        return Path(loc.file).resolve().parent
    return Path.cwd()


def _root(resolver: Resolver, base: Path) -> Path:
    """The folder a backbone's spec file must stay inside: that of the spec whose document is
    being resolved (the folder its ``extends``/``use`` files stay inside), or ``base`` for one
    without a file of its own (text, a search trial). Never the working directory: which files
    a spec may read does not depend on where the command runs."""
    from cnnspec.spec.compose import resolve_path

    file = resolver.doc.file
    found = resolve_path(Path(file)) if file and not file.startswith("<") else None
    return found.parent if found is not None else resolve_path(base) or base


def _outside(resolver: Resolver, ref: str, resolved: Path, base: Path) -> str | None:
    """The refusal of a backbone spec file outside the spec's folder (``None``: allowed), in
    the words and with the hint of an ``extends`` file's (:mod:`cnnspec.spec.compose`)."""
    from cnnspec.spec.compose import _in_zoo, _shown

    root = _root(resolver, base)
    if resolver.allow_outside or resolved.is_relative_to(root) or _in_zoo(resolved):
        return None
    return f"refusing to read {_shown(ref)}: it is outside the spec's folder ({root})"


def load_backbone_doc(resolver: Resolver, ref: Any, path: SpecPath) -> SourceDoc | None:
    """The backbone's composed document (``None`` after a located error)."""
    from cnnspec.paths import is_file
    from cnnspec.spec.compose import load_spec, path_refusal, resolve_path, unresolvable
    from cnnspec.spec.zoo import is_zoo_ref, split_variant

    if not isinstance(ref, str) or not ref.strip():
        resolver.error(f"expected a zoo model or a spec file; received {spelled(ref)}", path, code="backbone")
        return None
    target: str | Path = ref
    if not is_zoo_ref(ref):
        refused = path_refusal(ref)
        if refused is not None:
            resolver.error(refused, path, code="backbone")
            return None
        base = _base_dir(resolver, path)
        file = user_path(ref)
        file = file if file.is_absolute() else base / file
        # `family.yaml#v` names a variant of family.yaml (unless a file has that whole name, as
        # for `extends:`): split it off before resolving, so that the containment check sees
        # the file that will be read. Checking the literal `link.yaml#v` (no such file, so no
        # symlink to follow) and then opening `link.yaml` would read through a link out.
        variant: str | None = None
        if not is_file(file):
            stem, variant = split_variant(str(file))
            file = Path(stem) if variant is not None else file
        resolved = resolve_path(file)
        if resolved is None:
            resolver.error(unresolvable(ref), path, code="backbone")
            return None
        outside = _outside(resolver, ref, resolved, base)
        if outside is not None:
            resolver.error(outside, path, code="outside", hint="pass --allow-outside if you trust this file")
            return None
        if not resolved.exists():  # (a folder is refused by load_spec, in its words)
            resolver.error(
                f"no such backbone spec: {file}",
                path,
                code="backbone",
                hint="a zoo model (zoo:resnet50; `cnnspec zoo` lists them) "
                "or a spec file relative to this one",
            )
            return None
        # The checked, resolved file is what is read (a link swapped afterwards is not followed
        # again), with its variant for load_spec to select.
        target = resolved if variant is None else f"{resolved}#{variant}"
    try:
        return load_spec(target, allow_outside=resolver.allow_outside, reader=resolver.doc.reader)
    except SpecError as exc:
        note = Note(
            f"in backbone {ref!r} named at {format_path(path)}", resolver.loc(path), format_path(path)
        )
        for diag in exc.diagnostics:
            if diag.loc is None:  # e.g. an unknown zoo name: reported at the item that names it
                resolver.error(diag.message, path, code="backbone", hint=diag.hint)
            else:
                resolver.diags.add(diag.with_notes((note,)))
        return None


def set_vars(resolver: Resolver, doc: SourceDoc, raw: Any, path: SpecPath, env: dict[str, Any]) -> bool:
    """Put the item's ``vars`` over the backbone spec's own (declared ones only)."""
    if raw is None:
        return True
    if not isinstance(raw, dict):
        said = spelled(raw)
        resolver.error(f"expected a mapping of the backbone's vars; received {said}", path, code="backbone")
        return False
    own = doc.data.setdefault("vars", {})
    used = vars_read_by(doc.data, BACKBONE_SECTIONS)
    doc.schema_checked = False  # no longer the zoo model as packaged
    ok = True
    for name, value in raw.items():
        vpath = (*path, name)
        if name not in own:
            resolver.error(
                f"the backbone spec declares no var {name!r}",
                vpath,
                key=True,
                code="backbone",
                hint=did_you_mean(str(name), own) or "its vars: " + (", ".join(map(str, own)) or "none"),
            )
            ok = False
            continue
        good, value = resolver.evaluate(value, env, vpath)
        if not good:
            ok = False
            continue
        own[name] = value
        if name not in used:  # input_shape: the item's input feeds the backbone, not the spec's own
            resolver.diags.warning(
                f"the backbone's var {name!r} changes nothing here: a backbone item takes its "
                "spec's model alone, and the model does not read it",
                resolver.doc.key_loc(vpath),
                format_path(vpath),
                code="unused-var",
                hint="remove it; the backbone takes the shape of what feeds it (the model's input)",
                notes=resolver.call_notes(),
            )
        where = resolver.loc(vpath)
        if where is not None:
            doc.locs[("vars", name)] = where
    return ok


def _warn_own_weights(resolver: Resolver, doc: SourceDoc, ref: str, path: SpecPath) -> None:
    """Warn that the backbone spec's own top-level ``weights:`` is not loaded: a backbone item
    takes that spec's model alone (as it takes neither its ``input`` nor its ``training``), and
    only the item's ``weights`` loads into it. Its layers would start from scratch unsaid, and a
    path there that does not exist would pass."""
    from cnnspec.errors import short_value

    own = doc.data["weights"]
    where = doc.loc(("weights",))
    shown = own.get("from") if isinstance(own, dict) and "from" in own else own
    resolver.diags.warning(
        f"the backbone spec {ref!r} sets weights: {short_value(shown)}, which a backbone item does not "
        "load: its layers start from scratch",
        resolver.loc((*path, "spec")),
        format_path((*path, "spec")),
        code="backbone-weights",
        hint="give the source to the backbone item (- backbone: {spec: …, weights: SOURCE}; a path there "
        "starts at this spec's folder), or remove it from the backbone spec",
        notes=(Note(f"{ref!r} sets it at {where}", where, "weights"), *resolver.call_notes()),
    )


def resolve_backbone(
    resolver: Resolver,
    body: Any,
    path: SpecPath,
    scope: Scope,
    entry: str,
    item_id: str | None,
    env: dict[str, Any],
) -> str:
    """Resolve a ``backbone`` item into ``resolver``'s graph; the tensor it outputs."""
    from cnnspec.spec.resolve import Resolver
    from cnnspec.spec.schema import validate_document
    from cnnspec.spec.scope import UNKNOWN, Scope
    from cnnspec.spec.weights import IMAGENET, check_imagenet_input, check_imagenet_size, parse_source

    fields = resolver.combinator_fields(body, path, FIELDS, EXAMPLE)
    if fields is None:
        return UNKNOWN
    if len(resolver.backbones) >= MAX_DEPTH:
        resolver.error(f"expected at most {MAX_DEPTH} nested backbones", path, code="backbone")
        return UNKNOWN
    ref = fields["spec"]
    doc = load_backbone_doc(resolver, ref, (*path, "spec"))
    if doc is None or not set_vars(resolver, doc, fields.get("vars"), (*path, "vars"), env):
        return UNKNOWN
    if doc.file in resolver.backbones or doc.file == resolver.doc.file:
        resolver.error(f"backbone {ref!r} includes itself", path, code="cycle")
        return UNKNOWN
    before = len(resolver.diags.errors)
    validate_document(doc, resolver.diags)
    if len(resolver.diags.errors) > before:
        return UNKNOWN
    local = item_id or resolver.name_for(scope, None, KIND).removeprefix(scope.prefix)
    prefix = f"{scope.prefix}{local}_"
    if fields.get("weights") is None and doc.data.get("weights") is not None:
        _warn_own_weights(resolver, doc, ref, path)
    weights = None
    if fields.get("weights") is not None:
        try:
            weights = parse_source(
                fields["weights"],
                base_dir=_base_dir(resolver, (*path, "weights")),
                loc=resolver.loc((*path, "weights")),
                path=(*path, "weights"),
                zoo_model=doc.zoo_variant is not None,
                on_disk=False,
                backbone=True,
                notes=resolver.call_notes(),
            )
            check_imagenet_input(weights, tuple(resolver.shapes.get(entry) or ()))
        except SpecError as exc:
            for diag in exc.diagnostics:
                resolver.diags.add(diag)
            return UNKNOWN

    sub = Resolver(doc, resolver.diags, allow_outside=resolver.allow_outside)
    # One graph: the backbone's nodes, names and shapes go where this resolver's are.
    sub.nodes, sub.by_name, sub.shapes, sub.counters = (
        resolver.nodes,
        resolver.by_name,
        resolver.shapes,
        resolver.counters,
    )
    sub.record = resolver.record
    # what its layers took from its own `defaults:` (inspect's line), under its file: its paths
    # are its file's, and its defaults go into no item of this spec's resolved.yaml
    sub.defaulted = resolver.backbone_defaulted.setdefault(doc.file, {})
    sub.backbone_defaulted, sub.backbone_layers = resolver.backbone_defaulted, resolver.backbone_layers
    sub.deferred = resolver.deferred  # its tree is read with this one's: one set of copies to make
    for stack in SHARED_STACKS:  # what enclosing items set for every layer inside holds here too
        if hasattr(resolver, stack):
            setattr(sub, stack, getattr(resolver, stack))
    sub.input_name, sub.input_like = resolver.input_name, resolver.input_like
    sub.steps, sub.contexts = resolver.steps, resolver.contexts
    sub.nesting = sub.deepest = resolver.nesting  # its items nest inside this item (MAX_NESTING)
    sub.backbones = [*resolver.backbones, resolver.doc.file]
    sub.outer_notes = [
        Note(
            f"in backbone {ref!r} at {format_path(path[:-1])} ({resolver.loc(path)})",
            resolver.loc(path),
            format_path(path[:-1]),
        ),
        *resolver.call_notes(),
    ]
    start = len(resolver.nodes)
    sub_env = sub.vars_env = sub.resolve_vars()
    sub.spec_defaults = sub.resolve_defaults(doc.data.get("defaults"), ("defaults",), sub_env, {})
    top = Scope(entry, {}, None, prefix, sub_env, (*scope.group, local), sub.spec_defaults)
    until = fields.get("until")
    # Where the cut is reached, the rest of the model is left out unwalked: its mistakes (VGG's
    # later pools on an 8×8 input) are no mistakes of the part kept. Not for `imagenet` weights,
    # loaded by position: a later layer that takes a kept one changes the order (_crossing).
    by_position = weights is not None and weights.kind == IMAGENET
    stop = None
    if isinstance(until, str) and not by_position:

        def stop() -> bool:
            return (
                top.lookup(until.replace("/", ".")) is not None
                or _layer_named(resolver.nodes[start:], prefix, until) is not None
                or _instance_done(resolver.nodes[start:], len(top.group), until)
            )

    last = sub.walk_list(doc.data.get("model") or [], ("model",), top, entry, stop)
    for node in resolver.nodes[start:]:  # (a nested backbone's layers are its own: named first)
        resolver.backbone_layers.setdefault(node.name, doc.file)
    # Its image layers fed the model's input of 2 or 4 axes: reported where this spec sets
    # that input's shape (its input.shape), not in the backbone's file (a zoo model's)
    resolver.flat_input_errors += sub.flat_input_errors
    resolver.flat_input_layers += [f"{layer} of backbone {ref!r}" for layer in sub.flat_input_layers]
    resolver.flat_input_valid = resolver.flat_input_valid or sub.flat_input_valid
    resolver.steps, resolver.contexts = sub.steps, sub.contexts
    resolver.too_many = resolver.too_many or sub.too_many
    resolver.deepest = max(resolver.deepest, sub.deepest)
    if last == UNKNOWN or len(resolver.diags.errors) > before:
        return UNKNOWN
    if until is not None:
        output = top.lookup(until.replace("/", ".")) if isinstance(until, str) else None
        if output is None and isinstance(until, str):
            output = _layer_named(resolver.nodes[start:], prefix, until)
        if output is None and isinstance(until, str):
            output = instance_output(resolver.nodes[start:], len(top.group), until)
        if output is None:
            # (the backbone's input is no cut: it keeps none of its layers)
            near = [n for n in top.visible() if "[" not in n and n != "input"]
            groups = block_names(resolver.nodes[start:], len(top.group))
            layers = [*groups, *(node.name.removeprefix(prefix) for node in resolver.nodes[start:])]
            resolver.error(
                f"the backbone {ref!r} has no layer {until!r} to cut at",
                (*path, "until"),
                code="reference",
                # an id the backbone writes but leaves out for these vars (a head switched off by
                # include_top: false): said so, not listed among the ids it lacks
                hint=_left_out_hint(doc.data.get("model"), str(until), sub_env)
                or did_you_mean(str(until), [*near, *layers])
                or "its ids: "
                + ", ".join(near[:12])
                + (", …" if len(near) > 12 else "")
                + "; or the name of one of its layers or blocks, as `cnnspec inspect` of it lists them",
            )
            return UNKNOWN
        if output == entry:
            # `until: input`: a backbone without layers, whose `weights:` would load into none
            # and whose id a `training.freeze` would find empty
            points = cut_points(doc)
            resolver.error(
                f"expected `until:` to keep at least one layer of the backbone {ref!r}; "
                f"received {spelled(until)}, its input, which keeps none",
                (*path, "until"),
                code="backbone",
                hint=(f"its cut points: {', '.join(points)}; or " if points else "cut at ")
                + "the name of one of its layers or blocks, as `cnnspec inspect` of it lists them; "
                "or remove the backbone item",
            )
            return UNKNOWN
    else:
        outputs = sub.resolve_outputs(top, last)
        if len(outputs) != 1:
            resolver.error(
                f"the backbone {ref!r} has {len(outputs)} outputs; name the one to use",
                path,
                code="backbone",
                hint="add until: ID (an id of its model, a hierarchical name such as stem.bn, or a layer "
                "name)",
            )
            return UNKNOWN
        output = outputs[0]
    # The cut: layers of the backbone that do not lead to its output are left out silently.
    mine = resolver.nodes[start:]
    needed = ancestors(mine, [output])
    kept = [node for node in mine if node.name in needed]
    crossing = _crossing(mine, needed, output) if weights is not None and weights.kind == IMAGENET else None
    if crossing is not None:
        # keras.applications' files are matched by position among the layers with weights, in
        # the order Keras gives the built model's layers (cnnspec.training.transfer): a cut that
        # is no boundary of the graph reorders the kept ones, and shifts weights silently.
        resolver.error(
            f"cutting the backbone {ref!r} at {until!r} drops its layer "
            f"{crossing.name.removeprefix(prefix)!r}, which takes a layer the cut keeps other than "
            f"{until!r}, and `imagenet` weights are loaded by position",
            (*path, "until"),
            code="backbone",
            hint="cut at a layer that every kept layer leads to and the rest starts from (the end of "
            "a block or stage), or load the weights from a file saved with layer names",
        )
        return UNKNOWN
    resolver.nodes[start:] = kept
    for name, tensor in top.ids.items():
        if tensor in needed:
            scope.ids.setdefault(f"{local}.{name}", tensor)
    keras_name = ""
    if doc.zoo_variant is not None:
        from cnnspec.spec.zoo import variants

        keras_name = variants()[doc.zoo_variant].keras_name if doc.zoo_variant in variants() else ""
    include_top = bool(sub_env.get("include_top", True))
    try:  # (an input keras.applications has no ImageNet file for: training would refuse it)
        check_imagenet_size(weights, keras_name, include_top, tuple(resolver.shapes.get(entry) or ()))
    except SpecError as exc:
        for diag in exc.diagnostics:
            resolver.diags.add(diag)
        return UNKNOWN
    resolver.record.note(  # on the Backbone element walk_item opened for this item
        spec=str(ref),
        until=until,
        raw_vars=dict(fields.get("vars") or {}),
        prefix=prefix,
        names=tuple(node.name for node in kept),
        tree=sub.tree,
        weights=weights,
        keras_name=keras_name,
        include_top=include_top,
        doc=doc,
    )
    tree = sub.tree
    tree.name = str(doc.data.get("name", "backbone"))
    tree.description = str(doc.data.get("description", ""))
    tree.input_name, tree.input_shape = resolver.input_name, resolver.shapes.get(entry) or ()
    tree.defaults = {k: {p: v for p, (v, _) in ps.items()} for k, ps in sub.spec_defaults.items() if ps}
    return output


def _item_with_id(items: Any, wanted: str, depth: int = 0) -> dict[str, Any] | None:
    """The item of a model list (or of a layer list nested in one) whose ``id`` is ``wanted``;
    ``None`` when there is none (a few levels deep at most: a backbone's cut points are its
    top-level items, or those of a stage)."""
    if depth > 4:
        return None
    values = items if isinstance(items, list) else list(items.values()) if isinstance(items, dict) else []
    if isinstance(items, dict) and items.get("id") == wanted:
        return items
    for value in values:
        if isinstance(value, (dict, list)):
            found = _item_with_id(value, wanted, depth + 1)
            if found is not None:
                return found
    return None


def _yaml_value(value: Any) -> str:
    """A var's value as a spec writes it: ``true``, ``null``, ``avg``, ``[1, 2]``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _left_out_hint(model: Any, until: str, env: dict[str, Any]) -> str | None:
    """The hint for ``until:`` naming an item of the backbone that its ``when: ${…}`` leaves
    out with these vars: the condition, the values of the vars it reads, and each single var
    change that makes it hold (a flipped ``true``/``false``, or a value the condition compares
    the var with), as ``set include_top: true or pooling: avg``. ``None`` for any other item."""
    import ast

    from cnnspec.spec.expr import evaluate, names_in

    item = _item_with_id(model, until)
    condition = item.get("when") if item is not None else None
    if not isinstance(condition, str):
        return None
    text = condition.strip()
    if not (text.startswith("${") and text.endswith("}")):
        return None
    body = text[2:-1]
    try:
        names = sorted(name for name in names_in(body) if name in env)
        tree = ast.parse(body.strip(), mode="eval")
        if evaluate(body, env):  # it holds: the id is missing for another reason
            return None
    except Exception:  # (a condition that can't be read was reported where it is written)
        return None
    candidates: dict[str, list[Any]] = {}
    for name in names:
        options: list[Any] = [not env[name]] if isinstance(env[name], bool) else []
        for node in ast.walk(tree):  # `pooling == 'avg'`: the values it is compared with
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(isinstance(side, ast.Name) and side.id == name for side in sides):
                    options += [side.value for side in sides if isinstance(side, ast.Constant)]
        candidates[name] = [option for option in options if option != env[name]]
    fixes = []
    for name, options in candidates.items():
        for option in options:
            try:
                holds = bool(evaluate(body, {**env, name: option}))
            except Exception:  # a value the expression can't take (a comparison of types)
                continue
            fix = f"{name}: {_yaml_value(option)}"
            if holds and fix not in fixes:
                fixes.append(fix)
    values = ", ".join(f"{name}: {_yaml_value(env[name])}" for name in names)
    return (
        f"{until} is left out by its `when: {text}` with these vars"
        + (f" ({values})" if values else "")
        + (f": set {' or '.join(fixes)} in the backbone's vars" if fixes else "")
    )
