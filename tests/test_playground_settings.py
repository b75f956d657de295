"""ui.playground: settings ↔ URL, configs, live changes, time-boxed chunks (no Streamlit)."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import Config, Run, hparams
from ui import frames, playground
from ui.playground import SETTINGS, parse_query, to_query


def test_defaults_are_the_reference_settings_on_a_small_network_with_a_200_epoch_budget():
    config = playground.to_config(playground.defaults())
    assert config == Config(epochs=200, hidden=(6, 6))
    assert Config().hidden == (25, 25, 25)  # the library's, the CLI's and sweeps' default


def test_a_link_without_hidden_opens_the_apps_network_and_an_old_link_the_reports():
    assert parse_query({})[0]["hidden"] == (6, 6)
    assert parse_query({"hidden": "25,25,25"}) == (dict(playground.defaults(),
                                                        hidden=(25, 25, 25)), [])
    assert to_query(dict(playground.defaults(), hidden=(25, 25, 25))) == {"hidden": "25,25,25"}
    assert parse_query({"width": "9"})[0]["hidden"] == (9, 9, 9)  # then: three layers


def test_the_preset_switches_between_the_reports_network_and_the_apps():
    assert playground.other_network((6, 6)) == (25, 25, 25)
    assert playground.other_network((3, 8)) == (25, 25, 25)
    assert playground.other_network((25, 25, 25)) == (6, 6)


def test_every_setting_round_trips_through_the_url():
    settings = dict(playground.defaults(), dataset="gaussians", n_train=123, noise=0.25,
                    jitter=0.07,
                    hidden=(64, 8, 1, 3, 5, 64), activation="sigmoid", init="zero", gain=0.37,
                    features=("x1", "x1sq", "x1x2", "sinx2"), split=0.65,
                    optimizer="adam", lr=2e-5, beta1=0.5, beta2=0.98, eps=1e-10, rho=0.5,
                    momentum=0.9, weight_decay=3e-4, l1=2e-5, batch_size=32, epochs=999,
                    view="discrete")
    query = to_query(settings)
    assert query["lr"] == "2e-05" and query["gain"] == "0.37"
    assert query["hidden"] == "64,8,1,3,5,64" and query["features"] == "x1,x1sq,x1x2,sinx2"
    assert parse_query(query) == (settings, [])


def test_defaults_are_left_out_of_the_url():
    assert to_query(playground.defaults()) == {}
    assert to_query(dict(playground.defaults(), lr=0.1)) == {"lr": "0.1"}


@pytest.mark.parametrize("name, text", [
    ("lr", "abc"), ("lr", "-1"), ("lr", "nan"), ("lr", "inf"), ("lr", "5"),
    ("layers", "0"), ("layers", "7"), ("layers", "2.5"), ("width", "65"),
    ("hidden", "25,25,25,25,25,25,25"), ("hidden", "65"), ("hidden", "0"), ("hidden", ""),
    ("features", ""), ("features", "x1,x1"), ("features", "x3"), ("l1", "-1"),
    ("split", "1"), ("split", "0.01"),
    ("n_train", "1e9"), ("noise", "0.6"), ("jitter", "0.7"), ("jitter", "-0.1"),
    ("activation", "softmax"), ("dataset", ""),
    ("beta2", "1"), ("eps", "0"), ("epochs", "-5"), ("view", "3d"),
])
def test_invalid_values_fall_back_to_the_default_with_a_warning(name, text):
    settings, warnings = parse_query({name: text})
    # an old link's layers and width default to the network of its time, the report's
    old = {"hidden": (25, 25, 25)} if name in ("layers", "width") else {}
    assert settings == {**playground.defaults(), **old}
    assert len(warnings) == 1 and f"{name}={text}" in warnings[0]


def test_an_off_grid_learning_rate_snaps_to_the_nearest_stop_with_a_warning():
    settings, warnings = parse_query({"lr": "0.004"})
    assert settings["lr"] == 0.005 and "nearest" in warnings[0]


def test_unknown_parameters_are_reported_and_streamlits_own_ignored():
    settings, warnings = parse_query({"zoom": "2", "embed": "true"})
    assert settings == playground.defaults()
    assert warnings == ["zoom: not a setting; ignored."]


def test_choices_are_case_insensitive_and_repeated_parameters_use_the_last():
    settings, warnings = parse_query({"activation": "ReLU", "hidden": ["3", "4,5"],
                                      "features": "SINX1,X2"})
    assert (settings["activation"], settings["hidden"], settings["features"], warnings) == (
        "relu", (4, 5), ("x2", "sinx1"), [])


def test_old_links_with_layers_and_width_still_open():
    assert parse_query({"layers": "2", "width": "8"}) == (
        dict(playground.defaults(), hidden=(8, 8)), [])
    assert parse_query({"width": "9"})[0]["hidden"] == (9, 9, 9)
    settings, warnings = parse_query({"layers": "2", "hidden": "4"})
    assert settings["hidden"] == (4,) and warnings == ["layers: ignored (hidden is given)."]


def test_resize_widths_keeps_the_widths_set_and_extends_with_the_last():
    assert hparams.resize_widths((25, 8), 3) == (25, 8, 8)
    assert hparams.resize_widths((25, 8, 8), 1) == (25,)
    with pytest.raises(ValueError, match="hidden layers"):
        hparams.resize_widths((25,), 0)


def test_every_setting_in_range_builds_a_valid_config():
    for name, s in SETTINGS.items():
        values = s.choices or (s.app_low, s.app_high)
        if s.kind == "set":
            values = [(c,) for c in s.choices] + [s.choices]
        if s.kind == "widths":
            values = [(s.app_low,), (s.app_high,) * s.ui_length]
        for value in values:
            settings = dict(playground.defaults(), **{name: value})
            if name == "dataset":  # a data set poses its problem
                settings["problem"] = hparams.problem_of(value)
            fitted, changed = hparams.fit_problem(settings)
            assert name not in changed or name == "noise"  # regression: no label noise
            playground.to_config(fitted)


def test_learning_rate_stops_are_log_spaced_and_exact():
    assert hparams.LR_STOPS[0] == 1e-5 and hparams.LR_STOPS[-1] == 1.0
    assert 0.01 in hparams.LR_STOPS and 0.003 in hparams.LR_STOPS
    assert all(b / a <= 2.0 + 1e-9 for a, b in itertools.pairwise(hparams.LR_STOPS))


def test_classify_change_splits_reset_fields_from_live_ones():
    old = Config()
    reasons, live = playground.classify_change(old, Config(lr=0.1, batch_size=10, epochs=7))
    assert reasons == [] and live == {"lr": 0.1, "batch_size": 10, "epochs": 7}
    reasons, live = playground.classify_change(old, Config(hidden=(8, 8), activation="relu",
                                                           lr=0.1))
    assert reasons == ["hidden layer widths: 3 × 25 → 2 × 8", "activation: Tanh → ReLU"]
    assert live == {"lr": 0.1}
    for field in playground.RESET_FIELDS:
        assert field in Config.field_names()


def test_snapshot_has_what_the_view_draws():
    run = Run(Config(n_train=30, n_test=20, epochs=5))
    frame = frames.snapshot(run, resolution=20)
    assert (frame.epoch, frame.budget, frame.status, frame.parameters) == (0, 5, "fresh", 1427)
    assert frame.image.startswith("data:image/png;base64,")
    mistakes = frame.mistakes.to_pandas()
    assert set(mistakes["set"]) <= {"train", "test"} and len(mistakes) <= 50
    assert frame.history == [] and 0 <= frame.metrics["test_acc"] <= 1
    run.train_epoch()
    frame = frames.snapshot(run, resolution=20)
    assert frame.status == "partial" and frame.metrics == run.history[-1]
    assert [h["epoch"] for h in frame.history] == [1]
    # the mistakes are exactly the misclassified shown points, with or without the test set
    wrong_train = int((run.predict(run.X_train).argmax(1) != run.y_train).sum())
    wrong_test = int((run.predict(run.X_test).argmax(1) != run.y_test).sum())
    assert frame.mistakes.to_pandas()["set"].value_counts().reindex(["train", "test"], fill_value=0
                                                        ).tolist() == [wrong_train, wrong_test]
    assert set(frames.snapshot(run, 20, test=False).mistakes.to_pandas()["set"]) <= {"train"}


@given(st.dictionaries(st.text(max_size=60), st.text(max_size=300), max_size=30))
def test_any_link_parses_to_valid_settings_and_plain_short_warnings(params):
    """Whatever a link holds: every setting valid for a run, every warning plain text
    (no backticks or Markdown of ours) whose name and value are shortened."""
    settings, warnings = parse_query(params)
    playground.to_config(settings)  # raises if any value were invalid
    assert len(warnings) <= len(params)
    for warning in warnings:
        given = warning.split(": ", 1)[0]
        assert len(given.partition("=")[0]) <= 60 and len(given.partition("=")[2]) <= 40


def test_a_crafted_or_huge_link_gives_one_bounded_plain_text_block():
    params = {f"p{i}": "x" for i in range(500)} | {"lr": "`](https://x.example)\n# hi" * 10}
    settings, warnings = parse_query(params)
    assert settings == playground.defaults() and len(warnings) == 501
    text = playground.warnings_text(warnings)
    assert text.count("\n") == playground.SHOWN_WARNINGS  # 10 lines and "… and 491 more"
    assert text.endswith("… and 491 more")
    lr = next(w for w in warnings if w.startswith("lr="))
    assert len(lr.split(": ", 1)[0]) <= len("lr=") + playground.SHOWN_CHARACTERS
    assert "\n" not in lr  # one line per warning


def test_the_end_of_a_poor_run_says_what_to_try():
    good, poor = {"test_acc": 0.97}, {"test_acc": 0.38}
    full_batch = Config(batch_size=1000, epochs=200)
    assert "Raise the budget to train on" in frames.done_text(full_batch, good)
    assert ("200 optimizer steps" in frames.done_text(full_batch, poor)
            and "an epoch is only 1 step: lower the batch size" in
            frames.done_text(full_batch, poor))
    sigmoid = Config(activation="sigmoid", epochs=15)       # batch 1: 15,000 steps
    assert "batch size" not in frames.done_text(sigmoid, poor)
    assert "layer health panel" in frames.done_text(sigmoid, poor)


# ---------------------------------------------------------------- problem type

def test_a_regression_round_trips_through_the_url():
    settings = dict(playground.defaults(), problem="regression", dataset="multigauss",
                    jitter=0.1)
    query = to_query(settings)
    assert query == {"problem": "regression", "dataset": "multigauss", "jitter": "0.1"}
    assert parse_query(query) == (settings, [])
    assert playground.to_config(settings).sizes()[-1] == 1


def test_a_link_naming_only_a_regression_data_set_is_a_regression():
    settings, warnings = parse_query({"dataset": "plane"})
    assert (settings["problem"], settings["dataset"], warnings) == ("regression", "plane", [])


@pytest.mark.parametrize("query, dataset, warned", [
    ({"problem": "regression", "dataset": "spiral"}, "plane", "dataset=spiral: not a data set "
     "for regression; using plane."),
    ({"problem": "classification", "dataset": "plane"}, "disk", "dataset=plane: not a data set "
     "for classification; using disk."),
])
def test_a_data_set_of_the_other_problem_in_a_link_falls_back_with_a_warning(query, dataset,
                                                                             warned):
    settings, warnings = parse_query(query)
    assert settings["problem"] == query["problem"] and settings["dataset"] == dataset
    assert warnings == [warned]
    playground.to_config(settings)  # a valid run


def test_label_noise_in_a_regression_link_becomes_zero_with_a_warning():
    settings, warnings = parse_query({"problem": "regression", "noise": "0.2"})
    assert settings["noise"] == 0.0 and settings["dataset"] == "plane"
    assert len(warnings) == 1 and warnings[0].startswith("noise=0.2: label noise flips classes")


def test_the_page_offers_each_problem_its_own_data_sets():
    s = SETTINGS["dataset"]
    assert playground.offered(s, "regression") == ("plane", "multigauss")
    assert playground.offered(s) == ("disk", "xor", "gaussians", "spiral")


def test_a_race_link_with_a_regression_races_classifiers_and_says_why():
    from ui import compare
    base, _, warnings = compare.parse_query({"problem": "regression", "dataset": "plane"})
    assert base["problem"] == "classification" and base["dataset"] == "disk"
    assert len(warnings) == 1 and "races, sweeps and studies rank classifiers" in warnings[0]


@pytest.mark.parametrize("share, total, expected", [
    (0.8, 2000, (1600, 400)), (0.5, 2000, (1000, 1000)), (0.1, 2000, (200, 1800)),
    (0.9, 20, (18, 2)), (0.9, 2, (1, 1)), (0.1, 3, (1, 2)),
    (0.8, 10_000, (5000, 5000)),  # neither count may pass the app's 5000: the total wins
])
def test_a_training_share_sets_both_counts_and_keeps_their_total(share, total, expected):
    assert playground.counts(share, total) == expected


def test_the_shown_share_is_the_training_points_share_on_the_splits_slider():
    assert playground.share(1000, 1000) == 0.5 and playground.share(1600, 400) == 0.8
    assert playground.share(1234, 1000) == 0.55                   # to the slider's step
    assert playground.share(1, 5000) == SETTINGS["split"].app_low  # within its range
    assert playground.share(18, 2) == 0.9


@given(st.integers(2, 10_000), st.sampled_from(
    [i * SETTINGS["split"].ui_step for i in range(2, 19)]))
def test_counts_are_never_empty_and_stay_in_the_apps_range(total, share):
    n_train, n_test = playground.counts(share, total)
    assert n_train + n_test == total and n_train >= 1 and n_test >= 1
    assert hparams.in_app_range("n_train", n_train) and hparams.in_app_range("n_test", n_test)
