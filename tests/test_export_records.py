"""Export records (cnnspec.export.runtimes) and benchmark options, without TensorFlow: which
exports `predict --runtime` may use, and why it refuses the others."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from cnnspec.errors import UsageError
from cnnspec.export.runtimes import choose, find_export, open_session, record_path, write_record
from tests.test_report_support import flat, invoke

META = {
    "input": {"shape": [8, 8, 3], "color_mode": "rgb", "rescale_integer": 1 / 255, "rescale_float": None},
    "output": {"binary": False, "from_logits": False, "classes": ["a", "b"]},
}


@pytest.fixture
def run_dir(tmp_path):
    """A run folder with a stand-in model and a verified ONNX export (bytes only)."""
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "lock.json").write_text("{}")
    (run / "model.keras").write_bytes(b"model v1")
    export = run / "export" / "model.onnx"
    export.write_bytes(b"onnx bytes")
    write_record(export, run / "model.keras", {"verified": True, "max_abs_diff": 1e-7}, META)
    return run


def _refusal(run, runtime="onnx"):
    with pytest.raises(UsageError) as info:
        find_export(run, runtime)
    return f"{info.value} {info.value.hint}"


def test_a_verified_current_export_is_used(run_dir):
    record = find_export(run_dir, "onnx")
    assert record.path == run_dir / "export" / "model.onnx"
    assert record.sample_shape == (8, 8, 3) and record.classes == ["a", "b"]
    assert record.rescale(True) == pytest.approx(1 / 255) and record.rescale(False) is None
    assert find_export(run_dir / "model.keras", "onnx").path == record.path  # the model file: same run
    runtime, chosen, notes = choose(run_dir, "auto")
    assert (runtime, chosen.path, notes) == ("onnx", record.path, [])


def test_the_export_command_and_the_runtimes_agree_where_a_runs_exports_are(run_dir):
    """`cnnspec export RUN/model.keras` writes where `predict RUN` and `evaluate RUN` look."""
    from cnnspec.export.targets import resolve_target

    for target in (run_dir, run_dir / "model.keras"):
        assert resolve_target(target) == (run_dir / "model.keras", run_dir / "export" / "model")
    # a folder with a model but no lock.json: its exports are still in its export/
    (run_dir / "lock.json").unlink()
    assert find_export(run_dir, "onnx").path == run_dir / "export" / "model.onnx"


def test_a_missing_export_is_named_with_its_article(run_dir):
    (run_dir / "export" / "model.onnx").unlink()
    assert "expected an onnx export at" in _refusal(run_dir)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda run: (run / "model.keras").write_bytes(b"model v2"), "model.keras changed since the export"),
        (lambda run: (run / "export" / "model.onnx").write_bytes(b"other"), "changed after it was verified"),
        (lambda run: (run / "export" / "model.onnx.json").unlink(), "no verification record"),
        (lambda run: (run / "export" / "model.onnx.json").write_text("[1]"), "not a cnnspec export record"),
        (lambda run: (run / "export" / "model.onnx.json").write_text("{"), "unreadable"),
        (lambda run: (run / "export" / "model.onnx").unlink(), "there is none"),
    ],
    ids=["stale", "changed", "no-record", "not-a-record", "corrupt-record", "missing"],
)
def test_exports_that_cannot_be_trusted_are_refused(run_dir, change, words):
    change(run_dir)
    message = _refusal(run_dir)
    assert words in message
    assert f"cnnspec export {run_dir} --format onnx" in message  # the command that fixes it
    runtime, record, notes = choose(run_dir, "auto")  # auto falls back to Keras, saying why
    assert runtime == "keras" and record is None
    assert all("skipped onnx" in n for n in notes)


def _edit_record(run, **meta):
    """The run's ONNX record with ``meta`` written in (``part__field`` for one field), sealed
    again as the exporter seals it (``serving_sha256``): a record an exporter could have
    written, which an unsealed hand edit is not."""
    from cnnspec.export.runtimes import serving_digest

    record = run / "export" / "model.onnx.json"
    data = json.loads(record.read_text())
    for key, value in meta.items():
        part, _, field = key.partition("__")
        if field:
            data[part][field] = value
        else:
            data[part] = value
    data["serving_sha256"] = serving_digest(data)
    record.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ({"output": {}}, "has an output binary that is not true or false"),
        ({"input__shape": "x"}, "has an input shape that is no list of positive integers"),
        ({"input__rescale_integer": "1/255"}, "has an input rescale_integer that is no number"),
        ({"output__classes": "abc"}, "has output classes that are no list of names"),
        ({"outputs": "mask"}, "has outputs that are no list of output descriptions"),
        ({"output__temperature": 0}, "has an output temperature that is no positive number"),
        ({"output__temperature": "2"}, "has an output temperature that is no positive number"),
    ],
)
def test_a_hand_edited_record_is_refused_and_auto_falls_back_to_keras(run_dir, meta, words):
    """What predict reads from a record is checked when it is read: a malformed field was an
    internal error (KeyError: 'binary') and `--runtime auto` did not fall back."""
    _edit_record(run_dir, **meta)
    assert words in _refusal(run_dir)
    runtime, chosen, notes = choose(run_dir, "auto")
    assert (runtime, chosen) == ("keras", None) and any(words in note for note in notes)


def test_unverified_exports_are_refused(run_dir):
    export = run_dir / "export" / "model.onnx"
    write_record(export, run_dir / "model.keras", {"verified": False, "max_abs_diff": None}, META)
    assert "not verified" in _refusal(run_dir)
    assert json.loads(record_path(export).read_text())["verified"] is False


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--formats", "keras,caffe"], "caffe"),
        (["--formats", ","], "comma-separated"),
        (["--batch", "0"], "batch sizes from 1"),
        (["--batch", "a,b"], "whole numbers"),
        # an empty item is a value left out, not one to pass over silently
        (["--batch", "1,,2"], "no empty item"),
        (["--batch", "1,32,"], "no empty item"),
        (["--formats", "keras,,onnx"], "no empty item"),
    ],
)
def test_benchmark_argument_errors(tmp_path, args, words):
    result = invoke("benchmark", tmp_path, *args)
    assert result.exit_code == 2 and words in flat(result), result.output
    assert "Traceback" not in result.output


def _bench(runtimes, created, folder, sha="abc", batches=(1, 32)):
    """A benchmark.json's document whose rows timed files of ``folder`` (made, one per runtime)."""
    from cnnspec.fileio import sha256_file

    rows = []
    for index, runtime in enumerate(runtimes):
        file = folder / f"model.{runtime}"
        if not file.exists():
            file.write_bytes(runtime.encode())
        timed = {
            "file": str(file),
            "file_sha256": sha256_file(file),
            "latency_ms": {"1": {"median": index + 1.0}},
        }
        rows.append({"runtime": runtime, "status": "ok", **timed})
    return {
        "format": 1,
        "model_sha256": sha,
        "created": created,
        "settings": {"batches": list(batches), "threads": {"intra_op": 2, "inter_op": 1}},
        "machine": {"cpus": 2},
        "results": rows,
        "notes": [],
    }


def test_a_benchmark_of_some_formats_keeps_the_others_rows(tmp_path):
    from cnnspec.export.benchmark import carry_over

    full = _bench(["keras", "onnx", "tflite"], "2026-12-01T10:00:00", tmp_path)
    onnx_only = _bench(["onnx"], "2026-12-01T11:00:00", tmp_path)
    merged = carry_over(onnx_only, full)
    assert [r["runtime"] for r in merged["results"]] == ["keras", "onnx", "tflite"]
    assert [r.get("measured") for r in merged["results"]] == [
        "2026-12-01T10:00:00",
        None,
        "2026-12-01T10:00:00",
    ]
    assert merged["notes"] == [
        "kept the keras, tflite figures of the benchmark of 2026-12-01T10:00:00 (same model and settings)"
    ]
    # another model, other settings, or nothing readable: the new benchmark replaces the old
    for other in (
        _bench(["keras", "tflite"], "t", tmp_path, sha="retrained"),
        _bench(["keras"], "t", tmp_path, batches=(1,)),
    ):
        replaced = carry_over(onnx_only, other)
        assert [r["runtime"] for r in replaced["results"]] == ["onnx"]
        assert "with another model or settings: replaced" in replaced["notes"][0]
    assert carry_over(onnx_only, None) == onnx_only
    assert carry_over(onnx_only, ["not", "a", "document"]) == onnx_only


def test_a_row_whose_file_changed_since_it_was_timed_is_dropped(tmp_path):
    """An int8 file exported over model.tflite with -o kept the float file's row (its size,
    score and latency; `--runtime auto` ranks by them) after `benchmark --formats onnx`. A row
    of an older benchmark.json, with no hash of its file, can't be told the same either."""
    from cnnspec.export.benchmark import carry_over

    full = _bench(["keras", "onnx", "tflite"], "2026-12-01T10:00:00", tmp_path)
    (tmp_path / "model.tflite").write_bytes(b"int8 bytes")
    del full["results"][0]["file_sha256"]
    merged = carry_over(_bench(["onnx"], "2026-12-01T11:00:00", tmp_path), full)
    assert [r["runtime"] for r in merged["results"]] == ["onnx"]
    assert merged["notes"] == [
        f"the previous benchmark.json's {runtime} row timed a file that has changed or gone since "
        f"({tmp_path / ('model.' + runtime)}): dropped; time it again with --formats {runtime}"
        for runtime in ("keras", "tflite")
    ]


def _run_bench(runtimes, created, run_dir, files):
    """A benchmark.json's document of the run folder ``run_dir`` (as written from the working
    folder) whose rows name their files as ``files`` says (by runtime), hashed from the run."""
    from cnnspec.fileio import sha256_file

    places = {"keras": "model.keras", "onnx": "export/model.onnx"}
    document = _bench([], created, run_dir)
    document["run_dir"] = run_dir
    for runtime in runtimes:
        timed = {"file": files[runtime], "file_sha256": sha256_file(f"{run_dir}/{places[runtime]}")}
        document["results"].append({"runtime": runtime, "status": "ok", **timed})
    return document


def test_a_benchmark_from_another_folder_keeps_the_rows_of_files_unchanged(tmp_path, monkeypatch):
    """benchmark.json named each row's file relative to the working folder (r/model.keras):
    `benchmark .` from inside the run, or of the run folder moved, found none of them and
    dropped every unchanged row as 'a file that has changed or gone since'. A row names its
    file relative to the run folder now, and an older file's paths are still found."""
    from cnnspec.export.benchmark import carry_over

    run = tmp_path / "r"
    (run / "export").mkdir(parents=True)
    (run / "model.keras").write_bytes(b"model")
    (run / "export" / "model.onnx").write_bytes(b"onnx")
    monkeypatch.chdir(tmp_path)
    # an older cnnspec's, run from the run's parent: paths relative to that working folder
    files = {"keras": "r/model.keras", "onnx": "r/export/model.onnx"}
    older = _run_bench(["keras", "onnx"], "t0", "r", files)
    monkeypatch.chdir(run)
    merged = carry_over(_run_bench(["onnx"], "t1", ".", {"onnx": "export/model.onnx"}), older)
    assert [(r["runtime"], r["file"]) for r in merged["results"]] == [
        ("keras", "model.keras"),
        ("onnx", "export/model.onnx"),
    ]
    assert merged["notes"] == ["kept the keras figures of the benchmark of t0 (same model and settings)"]
    # the run folder moved, benchmarked from its parent: its rows are found in it
    monkeypatch.chdir(tmp_path)
    run.rename(tmp_path / "moved")
    again = carry_over(_run_bench(["onnx"], "t2", "moved", {"onnx": "export/model.onnx"}), merged)
    assert [(r["runtime"], r["file"]) for r in again["results"]] == [
        ("keras", "model.keras"),
        ("onnx", "export/model.onnx"),
    ]
    # a file that did change is still dropped, named where it is
    (tmp_path / "moved" / "model.keras").write_bytes(b"retrained")
    dropped = carry_over(_run_bench(["onnx"], "t3", "moved", {"onnx": "export/model.onnx"}), merged)
    assert [r["runtime"] for r in dropped["results"]] == ["onnx"]
    assert dropped["notes"] == [
        "the previous benchmark.json's keras row timed a file that has changed or gone since "
        "(moved/model.keras): dropped; time it again with --formats keras"
    ]


def test_a_benchmark_of_several_outputs_replaces_rows_that_scored_the_first_output_alone(tmp_path):
    """Rows of a benchmark.json written before every output was scored have no ``outputs``:
    kept beside rows that have them, the table of every output lacked those runtimes."""
    from cnnspec.export.benchmark import carry_over

    full = _bench(["keras", "onnx", "tflite"], "2026-12-01T10:00:00", tmp_path)
    onnx_only = _bench(["onnx"], "2026-12-01T11:00:00", tmp_path)
    onnx_only["results"][0]["outputs"] = {"count": {"task": "regression", "metric": "MAE", "score": 0.5}}
    replaced = carry_over(onnx_only, full)
    assert [r["runtime"] for r in replaced["results"]] == ["onnx"]
    assert replaced["notes"] == [
        "the previous benchmark.json also timed keras, tflite, scoring only the first output: replaced"
    ]
    for row in full["results"]:  # (rows that scored every output are kept)
        row["outputs"] = onnx_only["results"][0]["outputs"]
    assert [r["runtime"] for r in carry_over(onnx_only, full)["results"]] == ["keras", "onnx", "tflite"]


def _tflite(run, name: str, quantize: str | None) -> None:
    """A verified TFLite export (bytes only) at ``RUN/export/NAME``, quantized as said."""
    export = run / "export" / name
    export.write_bytes(b"tflite bytes " + name.encode())
    details = {"verified": True, "max_abs_diff": 1e-2, "top1_agreement": 0.984}
    write_record(
        export, run / "model.keras", {**details, "quantize": quantize} if quantize else details, META
    )


def test_a_missing_export_names_the_tflite_exports_beside_it_and_their_runtimes(run_dir):
    _tflite(run_dir, "model.tflite", None)
    _tflite(run_dir, "model.dynamic.tflite", "dynamic")
    message = _refusal(run_dir, "tflite-int8")
    missing = run_dir / "export" / "model.int8.tflite"
    assert (
        f"expected a tflite-int8 export at {missing}; there is none (there is model.tflite: --runtime "
        "tflite; model.dynamic.tflite: --runtime tflite-dynamic)"
    ) in message
    assert f"make one with `cnnspec export {run_dir} --format tflite --quantize int8`" in message
    (run_dir / "export" / "model.tflite").unlink()
    assert "(there is model.dynamic.tflite: --runtime tflite-dynamic)" in _refusal(run_dir, "tflite")
    # an ONNX export has no quantized kin to name
    (run_dir / "export" / "model.onnx").unlink()
    assert f"export at {run_dir / 'export' / 'model.onnx'}; there is none make one" in _refusal(run_dir)


def test_a_quantized_runtime_reads_only_its_quantization(run_dir):
    _tflite(run_dir, "model.int8.tflite", "int8")
    record = find_export(run_dir, "tflite-int8")
    assert record.path == run_dir / "export" / "model.int8.tflite" and record.runtime == "tflite-int8"
    runtime, chosen, notes = choose(run_dir, "tflite-int8")
    assert (runtime, chosen.path) == ("tflite-int8", record.path)
    assert notes == [
        "tflite-int8: model.int8.tflite is an int8-quantized export (decision agreement with Keras "
        "0.984 when exported); its answers may differ a little from the Keras model's"
    ]
    # auto reads the float exports only (here the ONNX one), never a quantized one
    assert choose(run_dir, "auto")[0] == "onnx"
    (run_dir / "export" / "model.onnx").unlink()
    assert choose(run_dir, "auto")[:2] == ("keras", None)
    # a file whose record says another quantization, or none, is refused with the command to remake it
    _tflite(run_dir, "model.float16.tflite", "int8")
    _tflite(run_dir, "model.dynamic.tflite", None)
    for runtime, said in (
        ("tflite-float16", "an int8-quantized"),
        ("tflite-dynamic", "a float (unquantized)"),
    ):
        message = _refusal(run_dir, runtime)
        assert f"its record says it is {said} export" in message, message
        assert f"cnnspec export {run_dir} --format tflite --quantize {runtime[7:]}" in message
    # the float runtime still reads a quantized file written to its path with -o, with the note
    _tflite(run_dir, "model.tflite", "float16")
    runtime, chosen, notes = choose(run_dir, "tflite")
    assert chosen.path.name == "model.tflite" and "is a float16-quantized export" in notes[0]
    # … which auto passes over (it served it: 0.1956 where Keras answers 0.1954), to Keras here
    runtime, chosen, notes = choose(run_dir, "auto")
    assert (runtime, chosen) == ("keras", None)
    assert notes == [
        "auto: skipped tflite: model.tflite is a float16-quantized export, which answers only near the model"
    ]


def test_a_benchmark_notes_a_quantized_file_at_the_float_path_and_its_row_says_so(run_dir):
    """An int8 file written to model.tflite with -o was timed and scored as the float tflite
    row with no note (predict and evaluate --runtime tflite note it); each quantized export
    the benchmark times is noted so, and its row names the quantization."""
    pytest.importorskip("ai_edge_litert")
    from cnnspec.export.benchmark import _row, ensure_export

    _tflite(run_dir, "model.tflite", "int8")
    _tflite(run_dir, "model.int8.tflite", "int8")
    notes: list[str] = []
    for runtime in ("onnx", "tflite", "tflite-int8"):
        record = ensure_export(run_dir, runtime, notes)
        row = _row(runtime, record.path, record, {}, run_dir)
        assert row.get("quantize") == (None if runtime == "onnx" else "int8"), row
    assert notes == [
        f"{runtime}: {name} is an int8-quantized export (decision agreement with Keras 0.984 when "
        "exported); its answers may differ a little from the Keras model's"
        for runtime, name in (("tflite", "model.tflite"), ("tflite-int8", "model.int8.tflite"))
    ]


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_an_export_its_runtime_cannot_read_is_refused_naming_it(run_dir, tmp_path, runtime):
    """A damaged file whose record's file_sha256 was rewritten to match passes every check of
    the record: onnxruntime's InvalidProtobuf and LiteRT's "not a valid Flatbuffer buffer" were
    internal errors (exit 3). Both the run's export and the file served alone are refused."""
    pytest.importorskip("onnxruntime" if runtime == "onnx" else "ai_edge_litert")
    from PIL import Image

    if runtime == "tflite":
        _tflite(run_dir, "model.tflite", None)  # (bytes that are no model, with a matching record)
    export = run_dir / "export" / f"model.{runtime}"
    image = tmp_path / "g.png"
    Image.new("RGB", (8, 8)).save(image)
    reader = "ONNX Runtime" if runtime == "onnx" else "LiteRT"
    # the file deployed with its record, served by itself
    served = tmp_path / "deploy" / export.name
    served.parent.mkdir()
    shutil.copy(export, served)
    shutil.copy(record_path(export), record_path(served))
    result = invoke("predict", served, image)
    assert result.exit_code == 2, result.output
    said = flat(result)
    assert f"refusing the {runtime} export {served}: {reader} cannot read it" in said, said
    assert f"re-export it: cnnspec export RUN --format {runtime} -o {served}" in said
    assert "internal error" not in said and "Traceback" not in said
    # the run's own export (evaluate, predict and the benchmark's worker open it so): its command
    with pytest.raises(UsageError) as info:
        open_session(runtime, export)
    assert str(info.value).startswith(f"refusing the {runtime} export {export}: {reader} cannot read it")
    assert info.value.hint.endswith(f"re-export it: cnnspec export {run_dir} --format {runtime}")


# -- where `cnnspec export -o` may write: refused before the model is read (no TensorFlow) ------


def _user_folder(tmp_path):
    """The repro: a folder of the user's that happens to hold a saved_model.pb."""
    folder = tmp_path / "sm"
    (folder / "data").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"pb")
    (folder / "MY_NOTES.txt").write_text("notes")
    (folder / "data" / "keep.csv").write_text("x")
    return folder


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_a_savedmodel_export_never_deletes_other_files_in_its_folder(run_dir, tmp_path, force):
    """The folder was replaced whole (exit 0, the notes gone) because it held a saved_model.pb."""
    folder = _user_folder(tmp_path)
    result = invoke("export", run_dir, "--format", "savedmodel", "-o", folder, *(["--force"] * force))
    assert result.exit_code == 2, result.output
    assert f"{folder} holds what no export does (MY_NOTES.txt, data)" in flat(result)
    assert "choose another -o" in flat(result)
    assert (folder / "MY_NOTES.txt").read_text() == "notes"
    assert (folder / "data" / "keep.csv").read_text() == "x"
    assert (folder / "saved_model.pb").read_bytes() == b"pb"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "sm"]  # no temp folder left


def test_an_earlier_savedmodel_at_o_is_replaced_only_with_force(run_dir, tmp_path):
    folder = tmp_path / "sm"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"pb")
    result = invoke("export", run_dir, "--format", "savedmodel", "-o", folder)
    assert result.exit_code == 2, result.output
    assert f"{folder} already exists" in flat(result) and "add --force to replace it" in flat(result)
    assert (folder / "saved_model.pb").read_bytes() == b"pb"


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
@pytest.mark.parametrize("record", [False, True], ids=["file", "record"])
def test_an_existing_o_file_is_kept_without_force(run_dir, tmp_path, fmt, record):
    """It was replaced without a word (and so was the record beside it)."""
    if fmt == "onnx" and importlib.util.find_spec("tf2onnx") is None:  # (not imported: it imports TF)
        pytest.skip("tf2onnx is not installed (the export is refused for that first)")
    other = tmp_path / f"other.{fmt}"
    existing = other.with_name(other.name + ".json") if record else other
    existing.write_text("the user's")
    result = invoke("export", run_dir, "--format", fmt, "-o", other)
    assert result.exit_code == 2, result.output
    assert f"{existing} already exists" in flat(result) and "add --force to replace it" in flat(result)
    assert existing.read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", existing.name])


def test_export_force_is_documented():
    result = invoke("export", "--help")
    assert "--force" in flat(result) and "replace an existing -o file" in flat(result)


# -- the default output is cnnspec's own: never written through a link -------------------------


def _linked_export(run, tmp_path):
    """The repro: ``ln -s $PWD/victim RUN/export``, with a model.tflite of the user's there."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "model.tflite").write_text("the user's")
    (victim / "notes.txt").write_text("notes")
    shutil.rmtree(run / "export")
    (run / "export").symlink_to(victim, target_is_directory=True)
    return victim


@pytest.mark.parametrize("fmt", ["tflite", "savedmodel"])
def test_a_linked_run_export_folder_is_refused(run_dir, tmp_path, fmt):
    """`cnnspec export RUN` wrote victim/model.tflite through the link, replacing it (the
    default output needs no --force); refused before the model is read (no TensorFlow)."""
    victim = _linked_export(run_dir, tmp_path)
    result = invoke("export", run_dir, "--format", fmt)
    assert result.exit_code == 2, result.output
    assert f"{run_dir / 'export'} is a symlink (to {victim})" in flat(result)
    assert (
        "cnnspec writes its exports into the run folder itself: remove the link, or export with -o PATH"
        in flat(result)
    )
    assert sorted(p.name for p in victim.iterdir()) == ["model.tflite", "notes.txt"]
    assert (victim / "model.tflite").read_text() == "the user's"


def test_a_run_export_that_is_a_file_or_a_linked_default_file_is_refused(run_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere.tflite"
    elsewhere.write_text("the user's")
    (run_dir / "export" / "model.tflite").symlink_to(elsewhere)
    result = invoke("export", run_dir, "--format", "tflite")
    assert result.exit_code == 2, result.output
    assert f"{run_dir / 'export' / 'model.tflite'} is a symlink (to {elsewhere})" in flat(result)
    assert elsewhere.read_text() == "the user's"
    shutil.rmtree(run_dir / "export")
    (run_dir / "export").write_text("not a folder")
    result = invoke("export", run_dir, "--format", "tflite")
    assert result.exit_code == 2, result.output
    assert f"{run_dir / 'export'} is not a folder" in flat(result)


def test_an_o_through_a_linked_export_folder_is_held_to_force(run_dir, tmp_path):
    """``-o victim/model.tflite`` is the default file by its real path; through the link it is
    the user's file, replaced only with --force."""
    victim = _linked_export(run_dir, tmp_path)
    for target in (victim / "model.tflite", run_dir / "export" / "model.tflite"):
        result = invoke("export", run_dir, "--format", "tflite", "-o", target)
        assert result.exit_code == 2, result.output
        assert f"{target} already exists" in flat(result) and "add --force to replace it" in flat(result)
    assert (victim / "model.tflite").read_text() == "the user's"


def test_a_keras_files_linked_default_output_is_refused(tmp_path):
    model = tmp_path / "net.keras"
    model.write_bytes(b"model")
    elsewhere = tmp_path / "elsewhere.tflite"
    elsewhere.write_text("the user's")
    (tmp_path / "net.tflite").symlink_to(elsewhere)
    result = invoke("export", model, "--format", "tflite")
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'net.tflite'} is a symlink" in flat(result)
    assert "the model's own folder" in flat(result)
    assert elsewhere.read_text() == "the user's"


# -- what predict and the benchmark read from a record, without TensorFlow ----------------------


def test_a_records_task_outputs_are_read_back_as_the_run_has_them(run_dir):
    """A task model's export used outside its run folder is read by its record's ``outputs``
    (records written before ``loss`` and ``probability_threshold`` read as well)."""
    outputs = [
        {"name": "labels", "task": "multilabel", "shape": [3], "from_logits": False, "threshold": 0.3},
        {"name": "mask", "task": "segmentation", "shape": [8, 8, 1], "from_logits": True, "threshold": 0.0},
    ]
    _edit_record(run_dir, outputs=outputs)
    labels, mask = find_export(run_dir, "onnx").tasks
    assert (labels.task, labels.units, labels.threshold, labels.decision_threshold) == (
        "multilabel",
        3,
        0.3,
        0.3,
    )
    assert (mask.task, mask.binary, mask.classes, mask.decision_threshold) == ("segmentation", True, 2, 0.0)
    assert mask.threshold == 0.5  # 0 on logits
    assert find_export(run_dir, "onnx").inputs == 1  # (not recorded before: one)


def _described(task: str, shape: tuple[int, ...], loss: str, **settings) -> dict:
    """The record's ``outputs`` entry of an output with ``loss`` and its ``settings``."""
    from cnnspec.analysis.settings_types import LossConfig
    from cnnspec.analysis.tasks import OutputTask
    from cnnspec.export.runtimes import describe_output

    config = LossConfig(loss, **settings)
    out = OutputTask(name="out", task=task, loss=config, metrics=(), shape=shape, activation=None)
    return describe_output(out)


def test_a_records_outputs_keep_every_loss_setting_and_a_served_file_reads_them(run_dir):
    """Only the loss's name was kept: a served file's loss had the Keras defaults (huber
    delta 1, focal alpha 0.25, no class balancing, no label smoothing), not the run's."""
    from cnnspec.analysis.passes import compile_text
    from cnnspec.analysis.settings import training_config
    from cnnspec.reporting.served import inexact_loss_notes, stand_in_text

    huber = _described("regression", (1,), "huber", delta=0.01, from_logits=True)  # (as a run's)
    assert huber["loss"] == {"huber": {"delta": 0.01}}
    focal = {"gamma": 2.0, "alpha": 0.3, "apply_class_balancing": True, "label_smoothing": 0.1}
    labels = _described("multilabel", (3,), "binary_focal_crossentropy", **focal)
    assert labels["loss"] == {"binary_focal_crossentropy": focal}
    mask = _described("segmentation", (8, 8, 3), "categorical_focal_crossentropy", alpha=0.5)
    assert mask["loss"] == {
        "categorical_focal_crossentropy": {"label_smoothing": 0.0, "gamma": 2.0, "alpha": 0.5}
    }
    assert _described("regression", (1,), "mse")["loss"] == "mse"  # (a loss without settings)
    for entry, expected in ((huber, {"delta": 0.01}), (labels, focal), (mask, {"alpha": 0.5})):
        _edit_record(run_dir, outputs=[entry])
        record = find_export(run_dir, "onnx")
        (read,) = record.tasks
        assert {k: getattr(read.loss, k) for k in expected} == expected
        # the stand-in spec evaluate reads the served file with trains the same loss
        (served,) = training_config(compile_text(stand_in_text(record), "<served>")).tasks
        assert served.loss == read.loss
        assert inexact_loss_notes(record) == []


def test_an_older_records_loss_name_alone_reads_with_a_note(run_dir):
    """A record written before the settings were kept still reads (the defaults), saying so
    for a loss that takes settings; a loss that takes none is exact."""
    from cnnspec.reporting.served import inexact_loss_notes

    old = {"name": "value", "task": "regression", "shape": [1], "from_logits": True, "loss": "huber"}
    _edit_record(run_dir, outputs=[old])
    record = find_export(run_dir, "onnx")
    assert record.tasks[0].loss.delta == 1.0
    assert inexact_loss_notes(record) == [
        "loss of value: huber with its default settings (the file's record keeps only the loss's "
        "name; the run folder's evaluate has the settings it trained with)"
    ]
    _edit_record(run_dir, outputs=[{**old, "loss": "mse"}])
    assert inexact_loss_notes(find_export(run_dir, "onnx")) == []


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"task": "detection"}, "outputs[0].task that is none of"),
        ({"loss": ["huber"]}, "outputs[0].loss that is no loss name or {name: settings}"),
        ({"loss": {"huber": {"delta": "x"}}}, "outputs[0].loss that is no loss name or {name: settings}"),
        ({"shape": []}, "outputs[0].shape that is no list of positive integers"),
        ({"from_logits": "no"}, "outputs[0].from_logits that is not true or false"),
        ({"threshold": "high"}, "outputs[0].threshold that is no number"),
    ],
)
def test_a_hand_edited_output_description_is_refused(run_dir, entry, words):
    """It was read without a check: a KeyError or a wrong answer, not a refusal."""
    good = {"name": "labels", "task": "multilabel", "shape": [3], "from_logits": False, "threshold": 0.5}
    _edit_record(run_dir, outputs=[{**good, **entry}])
    assert words in _refusal(run_dir)


def test_predict_refuses_an_export_of_a_model_with_several_inputs(run_dir, tmp_path):
    """The record says how many inputs the model has: the export runtimes refuse as Keras does
    (they crashed, exit 3), before the images are read."""
    pytest.importorskip("onnxruntime")
    _edit_record(run_dir, input__inputs=2)
    image = tmp_path / "g.png"
    image.write_bytes(b"not read")
    result = invoke("predict", run_dir, image, "--runtime", "onnx")
    assert result.exit_code == 2, result.output
    assert f"expected a model with one image input; {run_dir / 'export' / 'model.onnx'} has 2" in flat(result)


def test_predict_refuses_an_out_that_is_a_file_before_choosing_a_runtime(run_dir, tmp_path):
    """With an export the --out check came after the runtime, and a file there ended in a
    misleading disk error (exit 1); Keras refused it (exit 2)."""
    pytest.importorskip("onnxruntime")
    image, taken = tmp_path / "g.png", tmp_path / "afile"
    image.write_bytes(b"not read")
    taken.write_text("the user's")
    for runtime in ("onnx", "keras", "auto"):
        result = invoke("predict", run_dir, image, "--runtime", runtime, "-o", taken)
        assert result.exit_code == 2, result.output
        assert f"expected --out to name a folder that can be written; {taken} is a file" in flat(result)
    assert taken.read_text() == "the user's"


def test_a_failed_timing_worker_row_names_its_runtime(tmp_path):
    """The row of a failed worker had no ``runtime``: the table failed on it (KeyError, exit 3)."""
    from cnnspec.export.benchmark import _row, _worker

    settings = {"runtime": "onnx", "path": str(tmp_path / "missing.onnx"), "threads": 1}
    figures = _worker(settings, tmp_path, 1)
    assert figures["runtime"] == "onnx" and figures["status"].startswith("failed (exit 1)")
    row = _row("onnx", tmp_path / "missing.onnx", tmp_path / "missing.onnx", figures, tmp_path)
    assert row == {"runtime": "onnx", "status": figures["status"], "file": "missing.onnx"}


def test_the_benchmark_table_names_each_rows_test_figure():
    from cnnspec.cli.benchmark import results_table

    def row(runtime, **score):
        figures = {"latency_ms": {"1": {"median": 1.0, "p90": 2.0}}, "throughput": {"1": 9.0}}
        return {"runtime": runtime, "status": "ok", **figures, "size_bytes": 9, "peak_memory_mb": 1.0,
                "load_seconds": 0.1, **score}  # fmt: skip

    document = {
        "name": "net",
        "settings": {"batches": [1], "threads": {"intra_op": 1, "inter_op": 1}},
        "data": {"images": 5},
        "results": [
            row("keras", metric="MAE", score=0.25, accuracy=None),
            row("onnx", metric="MAE", score=0.25),
        ],
    }
    table = results_table(document)
    headers = [str(column.header) for column in table.columns]
    assert "MAE" in headers and "accuracy" not in headers
    document["results"][1] = row("onnx", accuracy=0.5)  # kept from an older benchmark.json
    table = results_table(document)  # two figures: each cell names its own
    assert "score" in [str(column.header) for column in table.columns]
    assert ["MAE 0.2500", "accuracy 0.5000"] in [list(column.cells) for column in table.columns]


#: A model of two outputs' benchmark rows (a mask and a count): each output's figures as the
#: worker writes them (bench_worker.output_scores), the ONNX row's agreement with Keras too.
def _output_figures(iou: float, mae: float, **compared: dict) -> dict:
    mask = {"task": "segmentation", "metric": "mean IoU", "score": iou, "test_mean_iou": iou,
            "test_pixel_accuracy": 0.75, "loss": 0.5, **compared.get("mask", {})}  # fmt: skip
    count = {"task": "regression", "metric": "MAE", "score": mae, "test_mae": mae, "test_r2": "nan",
             "loss": None, **compared.get("count", {})}  # fmt: skip
    return {"loss": 1.5, "outputs": {"mask": mask, "count": count}}


def test_the_benchmark_table_of_every_output_shows_each_runtimes_figures():
    """Only the first output was scored and shown; each output has its row now, with the test
    figures evaluate reports, its loss and its agreement with Keras ("–": none, or Keras itself)."""
    from cnnspec.cli.benchmark import outputs_table

    rows = [
        {"runtime": "keras", "status": "ok", **_output_figures(0.5, 0.25)},
        {"runtime": "tflite", "status": "export failed verification"},
        {
            "runtime": "onnx",
            "status": "ok",
            **_output_figures(
                0.5,
                0.2501,
                mask={"vs_keras": {"max_abs_diff": 2.5e-7, "agreement": 0.9921875}},
                count={"vs_keras": {"max_abs_diff": "inf", "agreement": None}},
            ),
        },
    ]
    table = outputs_table({"results": rows})
    assert table is not None and table.title == "each output on the test split"
    assert [str(column.header) for column in table.columns] == [
        "runtime", "output", "task", "test figures", "loss", "max |Δ| vs keras", "agreement with keras",
    ]  # fmt: skip
    assert [list(column.cells) for column in table.columns] == [
        ["keras", "keras", "onnx", "onnx"],
        ["mask", "count", "mask", "count"],
        ["segmentation", "regression", "segmentation", "regression"],
        [
            "mean IoU 0.5000, pixel accuracy 0.7500",
            "MAE 0.2500, R² nan",
            "mean IoU 0.5000, pixel accuracy 0.7500",
            "MAE 0.2501, R² nan",
        ],
        ["0.5000", "–", "0.5000", "–"],
        ["–", "–", "2.5e-07", "inf"],
        ["–", "–", "99.22%", "–"],
    ]
    assert outputs_table({"results": [{"runtime": "onnx", "status": "ok", "metric": "MAE"}]}) is None


def test_each_outputs_agreement_with_keras_comes_from_the_answers_each_runtime_kept(tmp_path):
    """Each export's answers on the test split, output by output, against Keras's: the largest
    difference, and the decisions made alike (argmax for a mask; none for a count)."""
    import numpy as np

    from cnnspec.export.benchmark import compare_outputs

    entries = [{"name": "mask", "task": "segmentation"}, {"name": "count", "task": "regression"}]
    mask = np.zeros((2, 2, 2, 2), dtype="float32")
    mask[..., 0] = 1.0  # class 0 in every pixel
    count = np.array([[1.0], [2.0]], dtype="float32")
    changed = mask.copy()
    changed[0, 0, 0] = [0.25, 0.75]  # one pixel of 8 decided otherwise
    kept = {name: tmp_path / f"{name}.npz" for name in ("keras", "onnx", "tflite")}
    np.savez(kept["keras"], mask, count)
    np.savez(kept["onnx"], changed, count + np.float32(0.5))

    def rows() -> list[dict]:
        return [
            {"runtime": r, "status": "ok", **_output_figures(0.5, 0.25)} for r in ("keras", "onnx", "tflite")
        ]

    results = rows()
    notes = compare_outputs(results, kept, entries)  # (tflite kept no answers: a full disk)
    assert notes == ["tflite: its answers could not be kept, so not compared with Keras's"]
    assert results[1]["outputs"]["mask"]["vs_keras"] == {"max_abs_diff": 0.75, "agreement": 0.875}
    assert results[1]["outputs"]["count"]["vs_keras"] == {"max_abs_diff": 0.5, "agreement": None}
    assert all("vs_keras" not in results[r]["outputs"]["mask"] for r in (0, 2))
    np.savez(kept["tflite"], np.full_like(mask, np.nan), count)  # NaN where Keras has a number
    results = rows()
    assert compare_outputs(results, kept, entries) == []
    assert results[2]["outputs"]["mask"]["vs_keras"] == {"max_abs_diff": float("inf"), "agreement": None}
    results = rows()[1:]  # no Keras row: nothing to compare with, said in a note
    assert compare_outputs(results, kept, entries) == [
        "each output's agreement with Keras is measured when keras is timed beside the exports"
    ]
    assert "vs_keras" not in results[0]["outputs"]["mask"]
    kept["keras"].unlink()  # (Keras's answers could not be kept: a full disk)
    assert compare_outputs(rows(), kept, entries) == [
        "keras: its answers could not be kept, so no export was compared with Keras's"
    ]


def test_an_export_beside_a_model_file_replaces_only_an_export_cnnspec_made(tmp_path):
    """Beside a .keras file outside a run folder the default output is in the user's folder:
    a model.onnx of theirs was replaced (exit 0, without a word), which -o refused."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"model")
    (folder / "model.onnx").write_bytes(b"my own onnx")
    result = invoke("export", folder / "model.keras", "-f", "onnx")
    assert result.exit_code == 2, result.output
    assert f"{folder / 'model.onnx'} is there, and is no export cnnspec made" in flat(result)
    assert (folder / "model.onnx").read_bytes() == b"my own onnx"
    # a record of the user's alone, without the file, is theirs too
    (folder / "model.onnx").unlink()
    (folder / "model.onnx.json").write_text("{}")
    assert "model.onnx.json is there" in flat(invoke("export", folder / "model.keras", "-f", "onnx"))
    # one cnnspec made (its record names its bytes) is replaced as before: refused further on,
    # where the stand-in model is found to be no Keras file
    (folder / "model.onnx").write_bytes(b"onnx bytes")
    write_record(folder / "model.onnx", folder / "model.keras", {"verified": True}, META)
    result = invoke("export", folder / "model.keras", "-f", "onnx")
    assert result.exit_code == 2 and "is no export cnnspec made" not in flat(result)
    # and so is cnnspec's record of an export moved away (it refused the record as the user's)
    (folder / "model.onnx").unlink()
    result = invoke("export", folder / "model.keras", "-f", "onnx")
    assert result.exit_code == 2 and "is no export cnnspec made" not in flat(result)


def test_an_export_into_another_runs_folder_is_refused(run_dir, tmp_path):
    """It replaced that run's verified export, whose predict then blamed its model.keras."""
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    before = (other / "export" / "model.onnx").read_bytes()
    result = invoke("export", run_dir, "-f", "onnx", "-o", other / "export" / "model.onnx", "--force")
    assert result.exit_code == 2, result.output
    assert "expected -o outside the folders of other runs" in flat(result)
    assert (other / "export" / "model.onnx").read_bytes() == before


def test_a_folder_that_only_looks_like_a_savedmodel_is_never_replaced(run_dir, tmp_path):
    """A web project's assets/ (the only entry: no saved_model.pb) was deleted by --force."""
    site = tmp_path / "webapp"
    (site / "assets" / "img").mkdir(parents=True)
    (site / "assets" / "site.css").write_text("body{}")
    fake = tmp_path / "fake"
    (fake / "variables").mkdir(parents=True)
    (fake / "saved_model.pb").write_bytes(b"pb")
    (fake / "variables" / "mine.txt").write_text("mine")
    for folder, shown in (
        (site, "no saved_model.pb, assets/img, assets/site.css"),
        (fake, "variables/mine.txt"),
    ):
        result = invoke("export", run_dir, "-f", "savedmodel", "-o", folder, "--force")
        assert result.exit_code == 2, result.output
        assert f"{folder} holds what no export does ({shown})" in flat(result)
    assert (site / "assets" / "site.css").is_file() and (fake / "variables" / "mine.txt").is_file()


def test_data_that_the_runs_class_selection_does_not_fit_is_told_why():
    """A run's data.classes is applied to --data too: an npz already holding the run's three
    classes, labelled 0–2 without names, was refused with "expected a class of the data;
    received 9" and a hint that said unnamed labels were fine."""
    from cnnspec.errors import Loc, SpecError
    from cnnspec.reporting.held_out import _data_misfit

    exc = SpecError.single(
        "expected a class of the data; received 9", Loc("spec.yaml", 3, 5), "data.classes[0]", code="data"
    )
    misfit = _data_misfit(exc)
    assert misfit is not None and str(misfit).startswith(
        "expected --data in the labels the run's data.classes picks its classes from"
    )
    assert "before data.classes picked and reordered them" in (misfit.hint or "")


def test_a_checkpoint_exported_into_its_own_runs_folder_is_no_other_runs(run_dir, tmp_path):
    """run/checkpoints/best.keras -o run/export/best.onnx was refused as "another run's folder"."""
    from cnnspec.cli.export import _refuse_other_run

    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "best.keras").write_bytes(b"model")
    _refuse_other_run(run_dir / "checkpoints" / "best.keras", run_dir / "export" / "best.onnx")
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    with pytest.raises(UsageError, match="another run's folder"):
        _refuse_other_run(run_dir / "checkpoints" / "best.keras", other / "export" / "best.onnx")


@pytest.mark.parametrize(
    ("recorded", "words"),
    [
        ({"split_unknown": "no_run"}, "(exported from a model file outside any run folder)"),
        (
            {"split_unknown": "no_seed"},
            "(exported from a run folder that records no training seed and split)",
        ),
        ({}, "(exported by an older cnnspec)"),  # no split and no word of why: an older record
    ],
)
def test_a_served_files_record_says_why_it_keeps_no_split(tmp_path, recorded, words):
    """The note of evaluate FILE --data of an export outside any run folder whose record keeps
    no run's split: a record of today's export says why (a lone model file exported), and only
    a record that says nothing is an older cnnspec's (every such file was said to be one)."""
    from cnnspec.export.runtimes import ExportRecord
    from cnnspec.reporting.run_splits import unknown_split_note
    from cnnspec.reporting.served import served_run

    export = tmp_path / "deploy" / "model.onnx"
    export.parent.mkdir()
    export.write_bytes(b"onnx bytes")
    run = served_run(ExportRecord(export, "onnx", {**META, **recorded}))
    assert unknown_split_note(run, 0, "test") == (
        f"the test split was drawn with seed 0, maybe not the training's: model.onnx lies in no run "
        f"folder and its record keeps no run's split {words}, so it may include images the model "
        "trained on"
    )


def test_the_export_of_a_model_with_no_known_split_records_why(tmp_path):
    """What export writes as ``split_unknown`` (read back by the test above): a lone model file,
    a model file in a run folder that can't be read for its split, a run folder without a
    seed."""
    from cnnspec.reporting.run import Run
    from cnnspec.reporting.run_splits import unknown_split_reason

    lone = tmp_path / "m.keras"
    assert unknown_split_reason(Run(model_path=lone)) == "no_run"
    broken = tmp_path / "run"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "lock.json").write_text("{}")
    assert unknown_split_reason(Run(model_path=broken / "checkpoints" / "best.keras")) == "run_unread"
    assert unknown_split_reason(Run(model_path=broken / "model.keras", run_dir=broken)) == "no_seed"


def test_benchmark_exports_a_missing_file_as_export_does_with_the_runs_temperature(tmp_path, monkeypatch):
    """benchmark exports what is missing to the run's export path, where predict and deployment
    take it: it exported with temperature 1, so a calibrated run's file there answered with the
    model's own probabilities, where `cnnspec export` folds the run's temperature in (None:
    the run's temperature.json), and `predict RUN --runtime onnx` scaled them."""
    import cnnspec.export.exporter as exporter
    from cnnspec.export.benchmark import _export

    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(exporter, "export_model", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert _export(tmp_path, "onnx") is None and _export(tmp_path, "tflite-int8") is None
    assert [(args, kwargs) for args, kwargs in calls] == [
        ((tmp_path, "onnx"), {"quantize": None, "temperature": None}),
        ((tmp_path, "tflite"), {"quantize": "int8", "temperature": None}),
    ]


def test_a_records_split_keeps_the_runs_data_classes_and_an_evaluation_selects_them():
    """An export's record keeps the run's data.classes with its split, read back as written (a
    damaged list: none), and the file's evaluation selects them from --data as the run does."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_text
    from cnnspec.reporting.run import SplitOrigin
    from cnnspec.reporting.run_splits import split_of_record, with_split

    origin = SplitOrigin(1, 0.3, 0.2, "", "digits", None, (3, 0, 1, 2))
    kept = origin.recorded()
    assert kept["classes"] == [3, 0, 1, 2]
    assert split_of_record(kept, "w") == SplitOrigin(1, 0.3, 0.2, "w", "digits", None, (3, 0, 1, 2))
    for damaged in ([3, 3], [True], ["a", 1.5], [], "3"):
        assert split_of_record({**kept, "classes": damaged}, "w").classes is None, damaged
    assert "classes" not in SplitOrigin(1, 0.3, 0.2, "", "digits").recorded()
    text = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel: [flatten, {dense: 4}]\n"
    text += "data: {source: {npz: d.npz}}\n"
    config = training_config(compile_text(text, "t.yaml"))
    assert with_split(config, origin).data.classes == (3, 0, 1, 2)
    assert with_split(config, SplitOrigin(1, 0.3, 0.2, "")).data.classes is None
