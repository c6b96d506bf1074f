"""Class and label names in pictures: shortened in the middle, so names that differ at their end
stay apart (the confusion matrix's axes, the sample tiles), with the class index where two
would still read alike; a multi-label (or multi-output) sample caption fitted to its tile.
No TensorFlow: the figures are drawn from arrays.
"""

from __future__ import annotations

import numpy as np

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec
from cnnspec.reporting.figures import sample_title, text_width
from cnnspec.reporting.task_views import CAPTION_WIDTH, _caption
from cnnspec.training.plots import confusion_figure, cut_label, distinct_labels
from cnnspec.training.task_plots import CAPTION_FONT
from tests.test_task_audit2 import two_heads

GROUPS = [f"experimental_condition_group_{k}" for k in range(10)]
SIGNS = ["pedestrian_crossing", "traffic_light_red", "speed_limit_sign"]


def test_a_long_name_is_cut_in_the_middle():
    assert cut_label("experimental_condition_group_7") == "experimenta…on_group_7"
    assert [cut_label("abcdef", k) for k in (1, 2, 3, 6)] == ["…", "a…", "a…f", "abcdef"]


def test_the_confusion_matrix_labels_stay_apart():
    figure = confusion_figure(np.eye(10, dtype=int).tolist(), GROUPS)
    axes = figure.axes[0]
    for ticks in (axes.get_xticklabels(), axes.get_yticklabels()):
        labels = [t.get_text() for t in ticks]
        assert labels == [f"experimenta…on_group_{k}" for k in range(10)]


def test_names_that_differ_only_in_their_middle_get_their_class_index():
    names = ["measurement_of_alpha_in_the_control_arm", "measurement_of_beta_in_the_control_arm", "cat"]
    assert distinct_labels(names) == ["measur…l_arm (class 0)", "measur…l_arm (class 1)", "cat"]
    assert sample_title(1, 0, 0.5, names) == "pred mea…arm (class 1) (50%)\ntrue measure…rol_arm (class 0)"


def test_sample_tiles_tell_the_classes_apart():
    title = sample_title(3, 4, 0.23, GROUPS)
    assert title == "pred experime…group_3 (23%)\ntrue experimental…ion_group_4"


def test_a_multilabel_caption_fits_its_tile(tmp_path):
    config = training_config(compile_spec(two_heads(tmp_path)))
    kind, tags = config.tasks
    text, wrong = _caption(tags, np.array([1, 1, 1]), np.array([0.9, 0.8, 0.7]), SIGNS)
    assert text == (
        "true pedest…ossing, traffi…ht_red, speed_…t_sign\npred pedest…ssing, traffi…t_red, speed_…_sign"
    )
    assert not wrong
    assert all(text_width(line, CAPTION_FONT) <= CAPTION_WIDTH for line in text.split("\n"))
    # a multi-output model's lines start with the output's name, and still fit
    text, wrong = _caption(tags, np.array([1, 0, 0]), np.array([0.1, 0.9, 0.1]), SIGNS, "tags: ")
    assert text == "tags: true pedestrian_crossing\ntags: pred traffic_light_red" and wrong
    same = ["a_very_long_class_name_that_is_cut_at_last"] * 2
    text, _ = _caption(kind, 1, np.array([0.2, 0.8]), same, "kind: ")
    assert all(text_width(line, CAPTION_FONT) <= CAPTION_WIDTH for line in text.split("\n"))
    assert text.split("\n") == [
        "kind: true a_very_long_cla…is_cut_at_last (class 1)",
        "kind: pred a_very_long_cl…is_cut_at_last (class 1)",
    ]


def test_a_caption_of_outputs_that_are_not_numbers_says_no_prediction(tmp_path):
    config = training_config(compile_spec(two_heads(tmp_path)))
    kind, tags = config.tasks
    nan = float("nan")
    assert _caption(tags, np.array([0, 1, 0]), np.array([nan] * 3), SIGNS) == (
        "true traffic_light_red\npred no prediction: not numbers",
        True,
    )
    # (the last class's name before: labels[-1] of NO_PREDICTION)
    assert _caption(kind, 0, np.array([nan, nan]), ["left", "right"]) == (
        "true left\npred no prediction: not numbers",
        True,
    )
