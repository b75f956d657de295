"""The Compare page driven by Streamlit's AppTest (no browser): a race of several settings
trained in the background (ui.background), its URL, its links to the Playground.

As on the Playground, ``run_every`` does not tick in AppTest: every ``at.run()`` draws the
race as it is then; ``settle`` waits for the background training to stop.  Data sets are kept
small through the URL so that epochs are quick.
"""

from urllib.parse import parse_qsl, urlparse

import helpers
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from minidl import hparams
from minidl.experiments import reproduce
from minidl.experiments.race import Race
from ui import compare, playground
from ui.background import Trainer

APP = helpers.APP
PAGE = "pages/compare.py"
SMALL = {"n_train": "60", "n_test": "60"}


def open_page(**query: str) -> AppTest:
    return helpers.open_app({**SMALL, **query}, PAGE)


def trainer_of(at: AppTest) -> Trainer:
    return at.session_state["cmp_trainer"]


def race_of(at: AppTest) -> Race:
    return trainer_of(at).run


def settle(at: AppTest) -> AppTest:
    return helpers.settle(at, "cmp_trainer", timeout=60)


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def tiles(at: AppTest) -> list[str]:
    """The captions of the boundary tiles (one st.image element holding them all)."""
    [images] = at.get("image")
    return [image.caption for image in images.proto.imgs]


def ranking(at: AppTest):
    [table] = at.dataframe
    return table.value


def ranking_shown(at: AppTest):
    """The ranking's cells as the grid writes them (its Styler's display values)."""
    [table] = at.dataframe
    return dataframe_util.convert_arrow_bytes_to_pandas_df(
        table.proto.arrow_data.styler.display_values)


def links(at: AppTest) -> list[str]:
    return [b.proto.url for b in at.get("link_button")]


def test_opens_with_the_reports_nine_pairs_ready_to_race():
    at = open_page()
    assert at.title[0].value == "Compare"
    match = race_of(at)
    assert [(c.activation, c.optimizer) for c in match.contestants] == list(
        reproduce.PAPER_CONFIGS)
    assert len(tiles(at)) == 9 and len(ranking(at)) == 9 and len(links(at)) == 9
    assert next(m.value for m in at.metric if m.label == "Epoch") == "0 / 200"
    assert not at.warning and not at.error


def test_step_trains_every_contestant_one_epoch():
    at = settle(click(open_page(), "cmp_step"))
    match = race_of(at)
    assert match.epoch == 1 and len(match.history) == 9
    table = ranking(at)
    accuracy = list(table["test accuracy %"])
    assert sorted(accuracy, reverse=True) == accuracy
    assert all("%" in caption for caption in tiles(at))


def test_a_race_runs_to_its_budget_and_names_a_winner():
    at = open_page(preset="lrs", epochs="3")
    settle(click(at, "cmp_train"))
    match = race_of(at)
    assert match.epoch == 3 and len(match.history) == 4 * 3
    [done] = at.success
    assert "Winner: " + ranking(at).iloc[0]["contestant"] in done.value
    assert at.button(key="cmp_train").disabled


def test_the_url_restores_the_race():
    at = open_page(preset="custom", contestants="activation=relu lr=0.001; optimizer=adam",
                   target_acc="0.9", data_seed="4", init_seed="5")
    match = race_of(at)
    assert [(c.activation, c.optimizer, c.lr) for c in match.contestants] == [
        ("relu", "sgd", 0.001), ("tanh", "adam", 0.01)]
    assert {c.data_seed for c in match.contestants} == {4}
    assert {c.init_seed for c in match.contestants} == {5}
    query = {k: v[-1] if isinstance(v, list) else v for k, v in at.query_params.items()}
    assert query["preset"] == "custom" and query["target_acc"] == "0.9"
    again = open_page(**query)
    assert [c.to_dict() for c in race_of(again).contestants] == [
        c.to_dict() for c in match.contestants]


def test_each_contestant_opens_in_the_playground_with_exactly_its_settings():
    at = open_page(preset="optimizers", init_seed="3")
    for link, config in zip(links(at), race_of(at).contestants):
        settings, warnings = playground.parse_query(dict(parse_qsl(urlparse(link).query)))
        assert not warnings
        assert playground.to_config(settings) == config


def test_bad_link_values_are_warned_about_as_plain_text():
    at = open_page(preset="**fast**", target_acc="2", lr="`oops`")
    [warning] = at.warning
    assert "3 settings in this link could not be used" in warning.value
    [code] = at.code
    assert "preset=**fast**" in code.value and "target_acc=2" in code.value
    assert not any("**fast**" in m.value for m in at.markdown)
    assert race_of(at).contestants[0].activation == "relu"  # the default preset raced


def test_a_bad_hand_made_list_gets_a_clear_message_and_no_race():
    at = open_page(preset="custom", contestants="lr=-1")
    [error] = at.error
    assert "cannot race" in error.value
    assert "Invalid learning rate (lr): -1" in at.code[0].value
    assert "cmp_trainer" not in at.session_state


def test_a_diverging_contestant_is_shown_as_diverged_and_the_race_goes_on():
    at = open_page(preset="custom", epochs="3",
                   contestants="lr=0.01; lr=1 loss=sum batch_size=20")
    settle(click(at, "cmp_train"))
    match = race_of(at)
    assert match.out() == {1} and match.epoch == 3
    assert tiles(at)[1].endswith("diverged")
    table = ranking(at)
    assert list(table["diverged"]) == ["", "diverged"]
    shown = ranking_shown(at)  # a lost number is a dash, not "None"
    assert list(shown["test accuracy %"])[1] == list(shown["training loss"])[1] == "—"


def test_the_ranking_writes_a_dash_for_numbers_not_measured_yet_and_rounds_the_rest():
    at = open_page()
    shown = ranking_shown(at)
    assert set(shown["test accuracy %"]) == set(shown["training loss"]) == {"—"}
    assert "None" not in shown.to_string() and "nan" not in shown.to_string()
    shown = ranking_shown(settle(click(at, "cmp_step")))
    assert all(len(v.split(".")[1]) == 1 for v in shown["test accuracy %"])
    assert all(len(v.split(".")[1]) == 4 for v in shown["training loss"])
    [table] = at.dataframe  # a hand-made contestant's long settings get the room
    assert '"settings": {"width": "large"' in table.proto.columns


def test_untrained_tiles_are_faded_and_trained_ones_are_not():
    # an untrained network's near-constant score painted each cold tile one solid colour
    import io
    import statistics

    from PIL import Image

    from ui import compare

    match = race_of(open_page(preset="lrs"))

    def background(match: Race) -> list[float]:
        """Each tile's median grey level: its background's, the points aside."""
        shown = compare.snapshot(match, 0.969, resolution=20, scale=2).tiles
        return [statistics.median(Image.open(io.BytesIO(png)).convert("L").tobytes())
                for png in shown]

    cold = background(match)
    assert min(cold) > 225  # pale: the points stand out (unfaded: 157, one solid orange)
    match.train_epoch()
    assert max(background(match)) < min(cold)  # a trained boundary in its full colours


def test_new_contestants_make_a_new_race_said_once_in_a_toast():
    at = open_page(preset="lrs")
    first = race_of(at)
    at.selectbox(key="cmp_preset").set_value("optimizers").run()
    assert race_of(at) is not first and race_of(at).epoch == 0
    assert [t.value for t in at.toast] == ["A new race: the contestants changed."]
    assert not at.info and not at.run().toast  # gone at the next redraw, not stale


def test_a_value_between_the_playgrounds_stops_is_snapped_with_a_warning():
    at = open_page(preset="custom", contestants="lr=0.0007")
    assert race_of(at).contestants[0].lr in hparams.TABLE["lr"].stops
    assert any("nearest" in w.value for w in at.warning)


@pytest.mark.parametrize("public", ["1"])
def test_a_race_takes_one_of_the_servers_places_to_train(monkeypatch, public):
    monkeypatch.setenv("MINIDL_TRAINING_SESSIONS", public)
    at = open_page()
    playground_session = AppTest.from_file(APP, default_timeout=60)
    playground_session.run()
    assert trainer_of(at).slots is playground_session.session_state["pg_trainer"].slots
    assert trainer_of(at).slots.limit == 1


def test_a_saved_sweeps_chosen_settings_race_and_a_bad_sweep_name_is_never_a_path(
        tmp_path, monkeypatch):
    helpers.results_dir(tmp_path, monkeypatch)
    at = open_page(preset="cv")
    [error] = at.error  # no saved sweep yet
    assert "cannot race" in error.value and "saved sweep" in at.code[0].value
    folder = helpers.tiny_saved_sweep()
    chosen = reproduce.configs_from_sweep(folder)[("tanh", "sgd")]
    at = open_page(preset="cv", sweep="../../../etc")
    [contestant] = race_of(at).contestants
    assert (contestant.activation, contestant.optimizer, contestant.lr,
            contestant.batch_size) == ("tanh", "sgd", chosen["lr"], 50)
    assert at.selectbox(key="cmp_sweep").value == folder.name


def test_a_race_runs_the_reports_network_unless_its_link_names_another():
    base, _, _ = compare.parse_query({})
    assert base["hidden"] == hparams.TABLE["hidden"].default == (25, 25, 25)
    base, _, _ = compare.parse_query({"hidden": "6,6"})
    assert base["hidden"] == (6, 6)
