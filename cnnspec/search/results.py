"""What a search leaves in its folder: search.json, best.yaml, plots and search.html.

- ``search.json``: the study (name, storage, objective, space) and every trial with its
  params, state, objective value, the epoch it was pruned at, and its run folder;
- ``best.yaml``: the searched spec (composed: extends/use applied) with the values the best
  trial trained with written in and without the ``search`` section, so ``cnnspec train
  DIR/best.yaml`` trains it as it is (every relative path it names is made absolute);
- ``history.png``, ``importances.png``, ``parallel.png``: Optuna's matplotlib plots (each only
  when the study has enough finished trials for it);
- ``search.html``: one self-contained page (plots inlined) linking to each trial's report.
  Every value from the study is escaped (any worker sharing a ``--storage`` can set a trial's
  user attributes) and the page carries report.html's Content-Security-Policy: no scripts run.

Another study than the spec's own in the same folder gets its own names (``search-SLUG.json``,
``best-SLUG.yaml`` …: :func:`summary_name`), so the summaries of two studies never mix.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import math
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cnnspec.analysis.graph import PICTURE_MARK
from cnnspec.errors import WriteError
from cnnspec.fileio import user_path, write_atomic
from cnnspec.jsontext import json_text
from cnnspec.spec.dumping import dump_yaml
from cnnspec.spec.search import SearchSpace, apply_values
from cnnspec.spec.zoo import written_data

PLOTS = {
    "history.png": "optimization history",
    "importances.png": "parameter importances",
    "parallel.png": "parallel coordinates",
}
#: report.html's policy (templates/report.html.j2): nothing loaded from elsewhere, no script at
#: all (an injected one included), only inline styles and ``data:`` images.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: Paths that are read relative to the spec that names them (best.yaml lives elsewhere): every
#: file or folder of a data source (cnnspec/spec/sections.py), and the top-level ``weights``;
#: a backbone item's ``spec`` and ``weights`` are found wherever they are (:func:`_file_paths`).
_DATA_PATHS = (
    ("data", "source", "npz"),
    ("data", "source", "directory"),
    ("data", "source", "test_directory"),
    ("data", "source", "csv"),
    ("data", "source", "test_csv"),
    ("data", "source", "images"),
    ("data", "source", "masks"),
    ("data", "source", "labels"),
    ("data", "source", "values"),
    ("weights",),
    ("weights", "from"),
)
#: Values of those keys that name no file: a zoo model, Keras' ImageNet weights.
_NOT_FILES = ("imagenet",)


def trial_rows(study: Any, out: Path) -> list[dict[str, Any]]:
    """Every trial of the study as plain data, in order. A trial a Ctrl-C or SIGTERM stopped
    (:func:`cnnspec.search.worker.stop`) is ``STOPPED``, with why in ``stopped``, not ``FAIL``;
    one whose run folder's name was taken is ``SKIPPED``, with why in ``skipped``."""
    from cnnspec.search.worker import STOPPED, skipped, stopped

    here = (socket.gethostname(), os.path.realpath(out))
    rows = []
    trials = study.get_trials(deepcopy=False)
    # why a failed trial without a `failed` attribute failed, from the retry enqueued for it:
    # a trial whose heartbeat stopped, failed by Optuna itself or an older cnnspec
    retry_reasons = {
        t.user_attrs["retry_of"]: t.user_attrs.get("retry_reason")
        for t in trials
        if isinstance(t.user_attrs.get("retry_of"), int)
    }
    # the stopped trial each retry went on from (its `continues`): said of the stopped one too
    continued_by = {
        t.user_attrs["continues"].get("trial"): t.number
        for t in trials
        if isinstance(t.user_attrs.get("continues"), dict)
    }
    for t in trials:
        attrs = t.user_attrs
        run_dir = attrs.get("run_dir")
        steps = sorted(t.intermediate_values)
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "params": _trial_params(t),
            "value": _finite(_objective(t, study)),
            "run_dir": run_dir,
            # only a folder inside OUT (run_dir is the storage's text: `/abs/path`, `../x` or a
            # number, which made `out / run_dir` raise, is no trial folder of this search)
            "report": f"{run_dir}/report.html"
            if isinstance(run_dir, str) and inside_page(run_dir) and (out / run_dir / "report.html").is_file()
            else None,
            "epochs": attrs.get("epochs", len(steps) or None),
            "pruned_at_epoch": attrs.get("pruned_at_epoch") if t.state.name == "PRUNED" else None,
            "test_accuracy": _finite(attrs.get("test_accuracy")),
            "test_metric": attrs.get("test_metric", "test_accuracy"),
            "test_value": _finite(attrs.get("test_value", attrs.get("test_accuracy"))),
            "seconds": _seconds(t, attrs),
            "host": attrs.get("host"),
        }
        if t.state.name == "PRUNED" and row["pruned_at_epoch"] is None and steps:
            row["pruned_at_epoch"] = steps[-1]
        # (continuing.CONTINUES …; seed_from, test_note: worker.record_split)
        for key in ("failed", "retry_of", "continues", "restarted", "seed", "seed_from", "test_note"):
            if key in attrs:
                row[key] = attrs[key]
        if t.state.name == "FAIL" and stopped(t):  # a Ctrl-C or SIGTERM's, not a failure
            row["state"] = "STOPPED"  # (Optuna's own state for it is FAIL: it has no other)
            row.pop("failed", None)  # (an older cnnspec's "interrupted")
            row["stopped"] = STOPPED
            if t.number in continued_by:
                row["continued_by"] = continued_by[t.number]
        if t.state.name == "FAIL" and skipped(t):  # its folder's name was taken: nothing trained,
            row["state"] = "SKIPPED"  # no budget spent (the next trial took its values), no failure
            row["skipped"] = row.pop("failed")
        if row["state"] == "FAIL" and not row.get("failed") and isinstance(retry_reasons.get(t.number), str):
            row["failed"] = retry_reasons[t.number]
        if isinstance(attrs.get("values"), dict):
            row["values"] = attrs["values"]  # as the trial used them (worker.run_trial)
        elsewhere = trial_elsewhere(attrs, out, here)
        if elsewhere is not None:
            row["elsewhere"] = elsewhere
        rows.append(row)
    return rows


def trial_elsewhere(attrs: dict[str, Any], out: Path, here: tuple[str, str]) -> str | None:
    """Where a trial's run folder is when it is not in ``out`` (a storage shared by several
    ``--out`` folders or machines): ``HOST:/real/path/of/its/OUT`` from its ``host`` and ``out``
    user attributes (:data:`cnnspec.search.worker.OUT_ATTR`); ``None`` for one in ``out``, one
    whose folder is there (``out`` moved or renamed since), and one of an earlier cnnspec (no
    ``out`` attribute). ``here``: this machine's name and ``out``'s real path."""
    from cnnspec.search.worker import OUT_ATTR

    recorded, host, run_dir = attrs.get(OUT_ATTR), attrs.get("host"), attrs.get("run_dir")
    if not isinstance(recorded, str) or (recorded == here[1] and host in (None, here[0])):
        return None
    if isinstance(run_dir, str) and inside_page(run_dir) and (out / run_dir).is_dir():
        return None
    return f"{host}:{recorded}" if isinstance(host, str) else recorded


def _objective(trial: Any, study: Any) -> Any:
    """The trial's objective: its value, but for a pruned trial the best epoch's, as trial.json
    says (Optuna keeps a pruned trial's last reported value, which the table showed)."""
    if trial.state.name != "PRUNED":
        return trial.value
    reported = [v for v in trial.intermediate_values.values() if isinstance(v, float) and math.isfinite(v)]
    if not reported:
        return trial.value
    return min(reported) if study.direction.name == "MINIMIZE" else max(reported)


def _trial_params(trial: Any) -> dict[str, Any]:
    """The trial's values; a waiting one (enqueued: a retry, or a grid point) has none of its
    own until it runs, so the values it was enqueued with."""
    if trial.params or trial.state.name != "WAITING":
        return dict(trial.params)
    fixed = trial.system_attrs.get("fixed_params")
    return dict(fixed) if isinstance(fixed, dict) else {}


def test_column(summary: dict[str, Any]) -> str:
    """The heading of the test column: the trials' headline test metric (``test accuracy``,
    ``test mean_iou``, ``mask.test mean_iou``; the task decides, see
    :func:`cnnspec.search.worker.test_headline`)."""
    keys = [row.get("test_metric") for row in summary["trials"] if row.get("test_metric")]
    key = str(keys[0]) if keys else "test_accuracy"  # (str: the storage's, of any JSON type)
    return key.replace("test_", "test ", 1)


def _seconds(t: Any, attrs: dict[str, Any]) -> float | None:
    """The seconds the trial's console line and trial.json say (its worker's own count, from
    the start of its training), not Optuna's from ask to tell, which also counts the worker's
    bookkeeping around it (a trial said 5.2 s on the console and in trial.json, 5.46 s here);
    Optuna's for a trial that has none (one failed or stopped before it trained)."""
    said = attrs.get("seconds")
    if isinstance(said, (int, float)) and not isinstance(said, bool) and math.isfinite(said) and said >= 0:
        return round(float(said), 2)
    return round(t.duration.total_seconds(), 2) if t.duration is not None else None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: Trial states as the leaderboard and search.html name them, in this order.
STATE_WORDS = {
    "COMPLETE": "complete",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "STOPPED": "stopped",
    "SKIPPED": "skipped",
    "RUNNING": "running",
    "WAITING": "waiting",
}


def count_text(counts: dict[str, int]) -> str:
    """``{"COMPLETE": 1, "FAIL": 1, "WAITING": 1}`` (search.json's ``counts``) as
    ``1 complete, 1 failed, 1 waiting``."""
    order = [s for s in STATE_WORDS if s in counts] + sorted(s for s in counts if s not in STATE_WORDS)
    return ", ".join(f"{counts[s]} {STATE_WORDS.get(s, s.lower())}" for s in order) or "none yet"


def best_row(rows: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    done = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    if not done:
        return None
    pick = max if direction == "maximize" else min
    return pick(done, key=lambda r: r["value"])


def ranked(rows: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Finished trials best first (complete before pruned), then the rest."""
    sign = -1 if direction == "maximize" else 1

    def key(r: dict[str, Any]) -> tuple[int, int, float, int]:
        order = {"COMPLETE": 0, "PRUNED": 1}.get(r["state"], 2)
        value = r["value"]
        return order, value is None, sign * value if value is not None else 0.0, r["number"]

    return sorted(rows, key=key)


def summary_name(file: str, tag: str = "") -> str:
    """The name of a summary file (``search.json``, ``best.yaml``, ``history.png`` …) of the
    study whose files carry ``tag`` (:func:`cnnspec.search.study.study_tag`):
    ``search-other.json`` for the study ``other`` beside the spec's own ``search.json``."""
    stem, dot, suffix = file.partition(".")
    return f"{stem}{tag}{dot}{suffix}"


#: The summary files a search writes into its folder (each named for its study by
#: :func:`summary_name`); :func:`foreign_summaries` knows its own by their marks.
SUMMARY_FILES = ("best.yaml", "search.json", "search.html", "history.png", "importances.png", "parallel.png")
#: The generator a search page names in its head.
PAGE_MARK = "cnnspec search"
#: The ``Software`` text of a search's plots (cnnspec's picture mark, :func:`is_cnnspec_png`,
#: with the command's name: a training's history.png is not a search's).
PLOT_MARK = "cnnspec search"
#: How best.yaml starts (:func:`write_best`).
BEST_HEADER = "# The best trial ("
#: How a search page of an earlier version starts, before it named a generator.
_EARLIER_PAGE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
    f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n<title>search '
)


def foreign_summaries(out: Path, tag: str = "") -> list[Path]:
    """The summary files of the study ``tag`` in ``out`` that exist and that cnnspec did not
    write, in :data:`SUMMARY_FILES` order: a search replaces its own summary files, never a
    file of the user's of the same name (``search -o`` into a folder of theirs replaced their
    best.yaml, search.json, search.html and history.png without a word). Each is known by its
    mark; beside a search's own search.json, a plot with cnnspec's plain mark counts as the
    search's too (an earlier version's)."""
    existing = [out / summary_name(name, tag) for name in SUMMARY_FILES]
    existing = [path for path in existing if os.path.lexists(path)]
    if not existing:
        return []
    earlier_plots = _is_search_json(out / summary_name("search.json", tag))
    return [path for path in existing if not _ours(path, earlier_plots)]


def _ours(path: Path, earlier_plots: bool = False) -> bool:
    """Whether a search wrote ``path``: a plot by its mark (``earlier_plots``: cnnspec's plain
    mark too), a search.json by its keys, best.yaml by its header, the page by its generator
    or an earlier version's head. A folder or other non-file is no search's."""
    from cnnspec.reporting.images import is_cnnspec_png, png_text

    if not path.is_file():
        return False
    if path.suffix == ".png":
        key, _ = PICTURE_MARK
        return png_text(path).get(key) == PLOT_MARK or (earlier_plots and is_cnnspec_png(path))
    if path.suffix == ".json":
        return _is_search_json(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    if path.suffix == ".yaml":
        return head.startswith(BEST_HEADER)
    return f'<meta name="generator" content="{PAGE_MARK}">' in head or head.startswith(_EARLIER_PAGE)


def _is_search_json(path: Path) -> bool:
    """Whether ``path`` is a search.json a search wrote (its keys)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and {"study", "objective", "direction", "trials"} <= set(document)


def write_summary(
    out: Path,
    study: Any,
    space: SearchSpace,
    storage: str,
    compiled: Any,
    tag: str = "",
    storage_id: str | None = None,
) -> dict[str, Any]:
    """search.json, best.yaml, the plots and search.html (each named for the study by ``tag``:
    :func:`summary_name`); returns search.json's content. ``storage_id``: the storage as
    :func:`cnnspec.search.study.storage_identity` gives it (search.json's ``storage_id``)."""
    rows = trial_rows(study, out)
    best = best_row(rows, space.direction)
    files: dict[str, str] = {}
    from cnnspec.search.study import kept_seed

    seed = kept_seed(study, compiled.doc)
    if best is not None:
        write_best(out / summary_name("best.yaml", tag), compiled, space, best, study.study_name)
        files["best"] = summary_name("best.yaml", tag)
    files.update(write_plots(out, study, tag))
    summary = {
        "study": study.study_name,
        "storage": storage,
        **({"storage_id": storage_id} if storage_id is not None else {}),
        "spec": str(compiled.path) if compiled.path else None,
        # the training seed of every trial, the study's (null: the spec's training.seed is)
        "training_seed": seed,
        "objective": space.objective,
        "direction": space.direction,
        "sampler": space.sampler,
        "pruner": space.pruner,
        "space": space.describe(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": {s: sum(1 for r in rows if r["state"] == s) for s in sorted({r["state"] for r in rows})},
        "best": best,
        "files": files,
        "trials": rows,
    }
    files.update(json=summary_name("search.json", tag), html=summary_name("search.html", tag))
    write_atomic(out / files["json"], json_text(summary, default=str))
    write_html(out / files["html"], summary)
    return summary


def write_best(path: Path, compiled: Any, space: SearchSpace, best: dict[str, Any], study: str) -> None:
    from cnnspec.analysis.search_check import changes_split
    from cnnspec.search.study import spec_seeds
    from cnnspec.search.worker import with_seed

    values = _params(space, best["params"], best.get("values"))
    doc = apply_values(compiled.doc, space, values)
    seed = best.get("seed")  # the study's, as the trial recorded it
    seeded = isinstance(seed, int) and not isinstance(seed, bool) and not spec_seeds(compiled.doc)
    if seeded:
        with_seed(doc, seed)
    data = json.loads(json.dumps(written_data(doc.data, doc.variant), default=str))
    env = _vars(doc)
    made = [at for at in _file_paths(data) if _absolute(data, doc, at, env)]
    shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
    header = (
        f"{BEST_HEADER}{best['number']}) of the search {study!r}: {space.objective} "
        f"{best['value']:.4f}\n# with {shown}\n"
        "# The searched spec, composed (extends/use applied), with these values written in; "
        "train it with `cnnspec train` as it is.\n"
    )
    if seeded:
        # (the same split only where no dimension draws a setting that decides it)
        split = next((d for d in space.dimensions if changes_split(d)), None)
        same = (
            "(the same validation and test split)"
            if split is None
            else f"(but {split.name} drew the images of each trial's splits: they differ)"
        )
        header += (
            f"# training.seed {seed} is the study's: the spec sets none, and every trial trained "
            f"with it {same}.\n"
        )
    if isinstance(best.get("seed_from"), str):
        # (the study's seed, said above; else the spec's own training.seed, which is that run's)
        whose = "That seed" if seeded else "Its training.seed"
        header += (
            f"# {whose} is the split seed of {best['seed_from']}, whose weights it starts from: "
            "its test images are none those weights trained on.\n"
        )
    elif isinstance(best.get("test_note"), str):  # (its test figures are not clean: said here too)
        header += f"# Its test split: {best['test_note']}.\n"
    if any(at[-2:] == ("backbone", "spec") for at in made):  # (a backbone file must be inside)
        header += "# Its backbone spec file lies outside this folder: train it with --allow-outside.\n"
    write_atomic(path, header + dump_yaml(data, sort_keys=False, allow_unicode=True, default_flow_style=None))


def _params(space: SearchSpace, params: dict[str, Any], used: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values the trial trained with: ``used`` (its ``values`` attribute) where it has
    them; else study params (categoricals as Optuna stores them) → the values the spec takes."""
    from cnnspec.search.study import from_categorical

    out = {}
    for d in space.dimensions:
        if used is not None and d.name in used:
            out[d.name] = used[d.name]
        elif d.name in params:
            value = params[d.name]
            out[d.name] = from_categorical(value, d.choices) if d.kind == "choice" else value
    return out


def _file_paths(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Where ``data`` may name a file relative to its spec: :data:`_DATA_PATHS`, and the
    ``spec`` and ``weights`` (``weights.from``) of every backbone item, at any depth (residual
    bodies, branches, blocks)."""
    found: list[tuple[Any, ...]] = list(_DATA_PATHS)
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data.get(key), (key,)) for key in ("model", "blocks")]
    while stack:
        value, at = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("backbone"), dict):
                item = (*at, "backbone")
                found += [(*item, "spec"), (*item, "weights"), (*item, "weights", "from")]
            stack.extend((v, (*at, k)) for k, v in value.items() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend((v, (*at, i)) for i, v in enumerate(value))
    return found


def _vars(doc: Any) -> dict[str, Any]:
    """The evaluated ``vars`` of ``doc`` (the trial's values written in): what a path written
    as an expression reads (an empty environment where they do not evaluate)."""
    from cnnspec.errors import Diagnostics
    from cnnspec.spec.resolve import Resolver

    try:
        return dict(Resolver(doc, Diagnostics()).resolve_vars())
    except Exception:  # (a spec the trials trained with evaluates: this is only a fallback)
        return {}


def _absolute(data: dict[str, Any], doc: Any, at: tuple[Any, ...], env: dict[str, Any]) -> bool:
    """The relative path at ``at`` made absolute as the training reads it
    (:func:`cnnspec.analysis.settings_reader._relative`): from the folder of the file that wrote it,
    or from the working folder for a ``--set`` value (its location is ``<--set …>``) or one
    without a location. A path written as an expression (``${root}/x.npz``) is written as
    the path it evaluates to in ``env``: best.yaml lives elsewhere, and a relative value of it
    would be read from there. Whether it changed."""
    from cnnspec.spec.expr import ExpressionError, is_expression, substitute
    from cnnspec.spec.zoo import is_zoo_ref

    node: Any = data
    for part in at[:-1]:
        node = node.get(part) if isinstance(node, dict) else node[part] if _has(node, part) else None
    if not isinstance(node, dict) or not isinstance(node.get(at[-1]), str):
        return False
    text = written = node[at[-1]]
    if is_expression(text):
        try:
            text = substitute(text, env)
        except (ExpressionError, RecursionError):  # (validate refuses it: left as written)
            return False
        if not isinstance(text, str):
            return False
    if text in _NOT_FILES or is_zoo_ref(text):  # (a name, not a file)
        return False
    path = user_path(text)
    if not path.is_absolute():
        loc = doc.loc(at)  # (as the training reads it: the nearest located ancestor's)
        folder = Path.cwd() if loc is None or loc.file.startswith("<") else Path(loc.file).resolve().parent
        path = folder / path
    node[at[-1]] = str(path)
    return str(path) != written


def _has(node: Any, index: Any) -> bool:
    return isinstance(node, list) and isinstance(index, int) and 0 <= index < len(node)


def write_plots(out: Path, study: Any, tag: str = "") -> dict[str, str]:
    """Optuna's matplotlib plots of the study (named by ``tag``: :func:`summary_name`); a plot
    the study can't have yet is left out."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not done:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as views

    from cnnspec.training.plots import png_bytes

    makers = {
        "history.png": views.plot_optimization_history,
        "importances.png": views.plot_param_importances,
        "parallel.png": views.plot_parallel_coordinate,
    }
    written: dict[str, str] = {}
    for name, make in makers.items():
        if name != "history.png" and len(done) < 2:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = make(study)
                figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
                figure.set_size_inches(8, 4.5)
                figure.tight_layout()
                figure.dpi = 100
                # marked as a search's: a later search replaces it, not a file of the user's
                # (nor a picture another command drew, with cnnspec's own mark); drawn once
                write_atomic(out / summary_name(name, tag), png_bytes(figure, PLOT_MARK))
            plt.close(figure)
            written[name.removesuffix(".png")] = summary_name(name, tag)
        except Exception as exc:  # e.g. importances of a parameter that never varied
            with contextlib.suppress(Exception):
                plt.close("all")
            if isinstance(exc, WriteError):  # a full disk is said, not a plot left out unsaid
                raise
    return written


def write_html(path: Path, summary: dict[str, Any]) -> None:
    """A self-contained page: the plots inlined, a table of trials linking to their reports."""
    esc = html.escape
    out = path.parent
    images = []
    for name, title in PLOTS.items():
        written = summary["files"].get(name.removesuffix(".png"))
        file = out / str(written)
        if written and file.is_file():
            data = base64.b64encode(file.read_bytes()).decode()
            images.append(f'<figure><img alt="{esc(title)}" src="data:image/png;base64,{data}">'
                          f"<figcaption>{esc(title)}</figcaption></figure>")  # fmt: skip
    names = [d["name"] for d in summary["space"]]
    head = "".join(f"<th>{esc(n)}</th>" for n in names)
    body = []
    for row in ranked(summary["trials"], summary["direction"]):
        trial = f"trial {esc(str(row['number']))}"
        href = _href(row["report"]) if row["report"] else None
        link = f'<a href="{href}">{trial}</a>' if href is not None else trial
        if row.get("elsewhere"):  # (its folder is in another --out: no link from here)
            link += f"<br><small>{esc(str(row['run_dir']))} in {esc(str(row['elsewhere']))}</small>"
        state = str(row["state"]).lower()
        if row.get("pruned_at_epoch"):
            state += f" at epoch {row['pruned_at_epoch']}"
        if row.get("failed") or row.get("skipped"):
            state += f" ({row.get('failed') or row['skipped']})"
        cells = "".join(f"<td>{esc(_short(row['params'].get(n)))}</td>" for n in names)
        body.append(
            f"<tr><td>{link}</td><td>{esc(state)}</td><td>{esc(_fmt(row['value']))}</td>"
            f"<td>{esc(_fmt(row.get('test_value')))}</td><td>{esc(str(row['epochs'] or ''))}</td>{cells}</tr>"
        )
    best = summary["best"]
    best_file = summary["files"].get("best")
    best_href = _href(best_file) if best_file else None
    best_text = (
        f"best: trial {esc(str(best['number']))}, {esc(summary['objective'])} {esc(_fmt(best['value']))}"
        + (
            f" ({esc(str(best['run_dir']))} in {esc(str(best['elsewhere']))})"
            if best.get("elsewhere")
            else ""
        )
        + (f' — <a href="{best_href}">{esc(str(best_file))}</a>' if best_href is not None else "")
        if best
        else "no trial has finished yet"
    )
    counts = f"{len(summary['trials'])} trial(s): {count_text(summary['counts'])}"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="{PAGE_MARK}">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>search {esc(summary["study"])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th{{background:#f3f3f3}}
figure{{display:inline-block;margin:0 1em 1em 0}}img{{max-width:640px}}</style></head><body>
<h1>search {esc(summary["study"])}</h1>
<p>{esc(summary["objective"])} ({esc(summary["direction"])}), sampler {esc(summary["sampler"])}, pruner
{esc(summary["pruner"])}; {esc(counts)}. Storage: {esc(str(summary["storage"]))}.</p>
<p>{best_text}</p>
{"".join(images)}
<table><tr><th>trial</th><th>state</th><th>{esc(summary["objective"])}</th><th>{esc(test_column(summary))}</th>
<th>epochs</th>{head}</tr>
{"".join(body)}
</table></body></html>
"""
    write_atomic(path, page)


def inside_page(path: str) -> bool:
    """Whether ``path`` (``/``-separated) names a file inside the page's folder: not absolute
    (``/abs/path``), not protocol-relative (``//host/x``), no empty, ``.`` or ``..`` part that
    would leave it or reach another folder (``a/../../x``), and no backslash (no trial folder
    has one, and on Windows it separates folders: ``..\\x`` would leave it)."""
    return bool(path) and "\\" not in path and all(part not in ("", ".", "..") for part in path.split("/"))


def _href(report: Any) -> str | None:
    """A link to a file of the search folder (a trial's report, from its ``run_dir`` user
    attribute, which anyone sharing the storage can set), or ``None`` when it would not be a
    path relative to the page inside its folder (:func:`inside_page`): the page then shows no
    link. Percent-quoted (``:`` too: never a ``javascript:`` or other URL) and escaped for the
    attribute."""
    text = str(report)
    if not inside_page(text):
        return None
    return html.escape(quote(text, safe="/"))


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and value is not None else ""


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
