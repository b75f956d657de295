"""The Playground page driven by Streamlit's AppTest (no browser).

A background thread trains the session's run (ui.background); in AppTest the
fragment's ``run_every`` does not tick by itself, so every ``at.run()`` draws the
run as it is then.  ``settle`` waits for the thread to stop and redraws.  Data
sets are kept small through the URL so that epochs are quick.
"""

import time

import helpers
import pytest
import torch
from helpers import wait_until
from streamlit.testing.v1 import AppTest

from minidl import health, nn
from minidl.engine import export
from minidl.engine.run import Run
from ui import training
from ui.background import Trainer

APP = helpers.APP
SMALL = {"n_train": "60", "n_test": "60"}


def open_app(**query: str) -> AppTest:
    return helpers.open_app({**SMALL, **query})


def trainer_of(at: AppTest) -> Trainer:
    return at.session_state["pg_trainer"]


def run_of(at: AppTest) -> Run:
    return trainer_of(at).run


def settle(at: AppTest) -> AppTest:
    return helpers.settle(at, "pg_trainer")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def widget(at: AppTest, name: str, where=None):
    """The widget of setting ``name`` (keys are "pg_<name>"), in the sidebar or the bar
    above the diagram (or only ``where``: ``at.sidebar``, ``at.main``)."""
    for kind in ("selectbox", "slider", "select_slider", "number_input", "multiselect"):
        for element in getattr(where or at, kind):
            if element.key == f"pg_{name}":
                return element
    raise KeyError(name)


REPORT = {"hidden": "25,25,25"}  # the report's 2-25-25-25-2, where a test needs its size


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def test_opens_on_the_playground_with_a_small_network_and_the_reports_one_click_away():
    at = open_app()
    assert at.title[0].value == "Playground"
    assert metric(at, "Epoch") == "0 / 200"
    assert metric(at, "Parameters") == "74"  # 2-6-6-2: unit maps large enough to read
    config = run_of(at).config
    assert (config.dataset, config.hidden, config.activation, config.init, config.gain) == (
        "disk", (6, 6), "tanh", "xavier", 1.0)
    assert (config.optimizer, config.lr, config.batch_size) == ("sgd", 0.01, 1)
    assert not at.warning and not at.info
    assert at.button(key="pg_train").label == "Train"
    assert "hidden" not in at.query_params                  # the app's default: not in links
    click(at, "pg_preset")                                  # the report's 2-25-25-25-2
    assert run_of(at).config.hidden == (25, 25, 25) and metric(at, "Parameters") == "1,427"
    assert at.query_params["hidden"] == "25,25,25" and widget(at, "hidden_2").value == 25
    click(at, "pg_preset")                                  # and back
    assert run_of(at).config.hidden == (6, 6) and "hidden" not in at.query_params


def test_a_link_with_the_reports_network_opens_it():
    at = open_app(**REPORT)
    assert run_of(at).config.hidden == (25, 25, 25) and metric(at, "Parameters") == "1,427"
    assert at.query_params["hidden"] == "25,25,25" and not at.warning


def test_the_bar_above_the_diagram_holds_its_settings_and_the_sidebar_the_rest():
    at = open_app()
    for name in ("dataset", "features", "hidden_layers", "hidden_0", "activation", "lr",
                 "weight_decay", "l1"):
        widget(at, name, at.main)
        with pytest.raises(KeyError):
            widget(at, name, at.sidebar)                    # one widget per setting
    for name in ("optimizer", "momentum", "batch_size", "epochs", "n_train", "init_seed"):
        widget(at, name, at.sidebar)


@pytest.mark.slow
def test_step_trains_exactly_one_epoch():
    at = open_app()
    before = run_of(at).metrics()
    settle(click(at, "pg_step"))
    run = run_of(at)
    assert run.epoch == 1 and len(run.history) == 1
    assert metric(at, "Epoch") == "1 / 200"
    assert metric(at, "Train loss") == f"{run.history[0]['train_loss']:.4f}"
    assert run.history[0]["train_loss"] != before["train_loss"]
    settle(click(at, "pg_step"))
    assert run_of(at).epoch == 2 and metric(at, "Epoch") == "2 / 200"


def test_train_trains_in_the_background_until_paused():
    at = open_app(epochs="10000")
    click(at, "pg_train")
    assert trainer_of(at).running and at.button(key="pg_train").label == "Pause"
    wait_until(lambda: run_of(at).epoch >= 2)
    at.run()  # the fragment's next tick draws where training is
    shown = int(metric(at, "Epoch").split(" / ")[0])
    assert shown >= 2
    wait_until(lambda: run_of(at).epoch > shown)   # training went on between frames
    click(at, "pg_train")  # Pause
    assert not trainer_of(at).running and at.button(key="pg_train").label == "Train"
    settle(at)
    paused_at = run_of(at).epoch
    time.sleep(0.1)
    at.run()
    assert run_of(at).epoch == paused_at
    assert metric(at, "Epoch") == f"{paused_at} / 10000"
    history = run_of(at).history
    assert [h["epoch"] for h in history] == list(range(1, paused_at + 1))


def test_reset_draws_new_weights_from_a_new_init_seed_and_keeps_the_other_settings():
    at = open_app(activation="relu")
    click(at, "pg_step")
    settle(click(at, "pg_step"))
    old = run_of(at)
    first = Run(old.config)  # the weights the old run started from
    reset = at.button(key="pg_reset")
    assert "new weights" in reset.help and "init seed" in reset.help
    click(at, "pg_reset")
    new = run_of(at)
    assert new is not old and new.epoch == 0 and new.history == []
    seed = new.config.init_seed
    assert seed != old.config.init_seed
    assert new.config == old.config.replace(init_seed=seed)
    assert not torch.equal(new.model.param()[0][0], first.model.param()[0][0])
    assert widget(at, "init_seed").value == seed and at.query_params["init_seed"] == str(seed)
    assert f"init seed {seed}" in at.toast[0].value
    assert metric(at, "Epoch") == "0 / 200"
    at.run()
    assert run_of(at) is new                               # the widgets agree with the run


@pytest.mark.slow
def test_changing_the_learning_rate_mid_run_keeps_epochs_and_weights():
    at = open_app(epochs="10000")
    settle(click(at, "pg_step"))
    click(at, "pg_train")
    run = run_of(at)
    with trainer_of(at).lock:
        epochs, weights = run.epoch, run.model.param()[0][0].clone()
    widget(at, "lr").set_value(0.1).run()
    assert not at.exception
    assert run_of(at) is run and run.epoch >= epochs       # same run, nothing reset
    assert run.optimizer.lr == 0.1 and run.config.lr == 0.1
    assert trainer_of(at).running                          # still training
    assert not at.toast                                    # no reset notice
    assert at.query_params["lr"] == "0.1"
    wait_until(lambda: run.epoch > epochs + 1)
    click(at, "pg_train")
    settle(at)
    assert run.epoch > epochs and not (run.model.param()[0][0] == weights).all()


def test_switching_the_optimizer_keeps_the_weights_and_says_so():
    at = open_app()
    settle(click(at, "pg_step"))
    run = run_of(at)
    weights = run.model.param()[0][0].clone()
    widget(at, "optimizer").set_value("adam").run()
    assert run_of(at) is run and run.epoch == 1
    assert (run.model.param()[0][0] == weights).all()
    assert type(run.optimizer).__name__ == "Adam"
    assert "Optimizer switched to Adam" in at.toast[0].value


@pytest.mark.parametrize("optimizer, shown, hidden", [
    ("sgd", {"momentum"}, {"beta1", "beta2", "eps", "rho"}),
    ("adam", {"beta1", "beta2", "eps"}, {"momentum", "rho"}),
    ("rmsprop", {"rho", "eps"}, {"momentum", "beta1", "beta2"}),
])
def test_only_the_chosen_optimizers_hyperparameters_are_shown(optimizer, shown, hidden):
    at = open_app(optimizer=optimizer)
    keys = {w.key for kind in ("slider", "select_slider", "number_input")
            for w in getattr(at.sidebar, kind)}
    assert {f"pg_{name}" for name in shown} <= keys
    assert not {f"pg_{name}" for name in hidden} & keys


def test_changing_the_architecture_resets_with_a_notice():
    at = open_app(**REPORT)
    settle(click(at, "pg_step"))
    old = run_of(at)
    widget(at, "hidden_layers").set_value(2).run()
    new = run_of(at)
    assert new is not old and new.epoch == 0 and new.config.hidden == (25, 25)
    assert "hidden layer widths: 3 × 25 → 2 × 25" in at.toast[0].value
    assert metric(at, "Parameters") == f"{nn.parameter_count(new.model):,}"


def test_a_new_network_trains_on_when_the_old_one_was_training():
    at = click(open_app(**REPORT), "pg_train")
    old = run_of(at)
    wait_until(lambda: old.epoch >= 1)
    widget(at, "hidden_layers").set_value(2).run()
    new = run_of(at)
    assert new is not old and new.config.hidden == (25, 25)
    assert trainer_of(at).running and at.button(key="pg_train").label == "Pause"
    wait_until(lambda: new.epoch >= 1)
    settle(click(at, "pg_train"))
    assert not trainer_of(at).running


def test_changing_the_data_resets_with_a_notice():
    at = open_app()
    settle(click(at, "pg_step"))
    widget(at, "dataset").set_value("xor").run()
    assert run_of(at).epoch == 0 and run_of(at).config.dataset == "xor"
    assert "data set: disk → XOR" in at.toast[0].value
    # a toast, shown once: it fades by itself, never stays stale, never moves the page
    assert not at.info and not at.run().toast


def train_until_stopped(at: AppTest) -> None:
    """Press Train, then wait until training stops by itself and the page redraws."""
    settle(click(at, "pg_train"))


def test_training_stops_by_itself_at_the_epoch_budget():
    at = open_app(epochs="3")
    train_until_stopped(at)
    assert run_of(at).epoch == 3 and not trainer_of(at).running
    assert metric(at, "Epoch") == "3 / 3"
    assert "Epoch budget reached" in at.success[0].value
    assert at.button(key="pg_train").disabled and at.button(key="pg_step").disabled
    widget(at, "epochs").set_value(5).run()               # a bigger budget: train on
    assert not at.button(key="pg_train").disabled and run_of(at).epoch == 3


def replay_toggle(at: AppTest):
    return next((t for t in at.toggle if t.key == "pg_replay"), None)


def diagram_biases(at: AppTest) -> list[float]:
    from minidl.viz import network
    return [b for b in chart_table(at, network.UNITS)["bias"] if b == b]  # inputs: none


@pytest.mark.slow
def test_replay_draws_the_chosen_epoch_and_never_changes_the_run():
    at = open_app(epochs="4")
    assert replay_toggle(at) is None                      # nothing to replay yet
    train_until_stopped(at)
    run = run_of(at)
    weights = [p.clone() for p, _ in run.model.param()]
    replay_toggle(at).set_value(True).run()
    slider = at.select_slider(key="pg_replay_epoch")
    assert slider.value == 4 and metric(at, "Epoch") == "4 / 4"
    slider.set_value(2).run()
    assert not at.exception, at.exception
    second = run.history[1]
    assert metric(at, "Epoch") == "2 / 4"
    assert metric(at, "Train loss") == f"{second['train_loss']:.4f}"
    assert metric(at, "Test accuracy") == f"{100 * second['test_acc']:.1f}%"
    then = run.at(2).model  # the diagram shows the weights of epoch 2
    assert diagram_biases(at) == pytest.approx(
        [b for p, _ in then.param()[1::2] for b in p.tolist()])
    assert not at.success                                 # "budget reached" is epoch 4's
    assert any("as it was at the end of the chosen epoch" in c.value for c in at.caption)
    assert run_of(at) is run and run.epoch == 4
    assert all(torch.equal(p, w) for (p, _), w in zip(run.model.param(), weights))
    replay_toggle(at).set_value(False).run()              # back to the run as it is
    assert metric(at, "Epoch") == "4 / 4" and at.success


@pytest.mark.slow
def test_pressing_train_leaves_replay_for_the_run_as_it_is():
    at = open_app(epochs="3")
    train_until_stopped(at)
    # room to train on for longer than a page run (with 2 epochs left, a fast machine ended
    # the run before the click's page run was drawn, and replay was offered again)
    widget(at, "epochs").set_value(2000).run()
    replay_toggle(at).set_value(True).run()
    at.select_slider(key="pg_replay_epoch").set_value(1).run()
    assert metric(at, "Epoch") == "1 / 2000"
    click(at, "pg_train")
    assert replay_toggle(at) is None                      # no replay while it trains
    wait_until(lambda: run_of(at).epoch > 3)
    settle(click(at, "pg_train"))                         # Pause
    epoch = run_of(at).epoch
    assert metric(at, "Epoch") == f"{epoch} / 2000"
    assert replay_toggle(at).value is False
    assert run_of(at).snapshots.epochs == list(range(1, epoch + 1))


def test_divergence_stops_training_with_a_message_not_a_traceback():
    at = open_app(lr="1.0")
    train_until_stopped(at)
    assert run_of(at).diverged and not trainer_of(at).running
    assert not at.exception
    assert "diverged" in at.error[0].value
    assert at.button(key="pg_train").disabled
    assert metric(at, "Train loss") == "diverged"  # not a 28-digit number or nan


def test_a_url_restores_every_setting():
    query = dict(dataset="spiral", n_train="80", n_test="70", noise="0.1", data_seed="4",
                 hidden="9,4", activation="relu", init="xavier", gain="2.0",
                 features="x1,x2,sinx1", init_seed="3", optimizer="rmsprop", lr="0.003",
                 rho="0.9", eps="1e-06", l1="0.0001", batch_size="10", epochs="50",
                 view="discrete")
    at = open_app(**query)
    assert not at.warning
    config = run_of(at).config
    assert (config.dataset, config.n_train, config.n_test, config.noise, config.data_seed) == (
        "spiral", 80, 70, 0.1, 4)
    assert (config.hidden, config.activation, config.gain, config.init_seed) == (
        (9, 4), "relu", 2.0, 3)
    assert config.features == ("x1", "x2", "sinx1") and config.sizes() == [3, 9, 4, 2]
    assert (config.optimizer, config.lr, config.rho, config.eps, config.l1) == (
        "rmsprop", 0.003, 0.9, 1e-6, 1e-4)
    assert (config.batch_size, config.epochs) == (10, 50)
    assert at.radio(key="pg_view").value == "discrete"
    assert widget(at, "lr").value == 0.003
    # the URL keeps saying the same, less what equals a default (init=xavier)
    assert dict(at.query_params) == {k: v for k, v in query.items() if k != "init"}


def test_an_old_link_with_layers_and_width_opens_as_per_layer_widths():
    at = open_app(layers="2", width="9")
    assert not at.warning and run_of(at).config.hidden == (9, 9)
    assert at.query_params["hidden"] == "9,9" and "layers" not in at.query_params
    assert widget(at, "hidden_layers").value == 2 and widget(at, "hidden_1").value == 9


def test_features_are_chosen_in_the_bar_and_written_to_the_url():
    at = open_app()
    widget(at, "features").set_value(["x1", "x2", "x1sq"]).run()
    assert run_of(at).config.sizes()[0] == 3 and at.query_params["features"] == "x1,x2,x1sq"
    run = run_of(at)
    widget(at, "features").set_value([]).run()  # every feature off: they stay as they were
    assert not at.exception and run_of(at) is run and run.config.features == ("x1", "x2", "x1sq")
    assert widget(at, "features").value == ["x1", "x2", "x1sq"]
    assert "A network needs an input" in at.toast[0].value
    assert at.query_params["features"] == "x1,x2,x1sq"


def test_bad_url_values_fall_back_to_defaults_with_visible_warnings():
    at = open_app(lr="abc", layers="99", activation="bogus", epochs="-5", eps="0",
                  surprise="1")
    assert not at.exception
    assert len(at.warning) == 1 and at.warning[0].value.startswith("6 settings in this link")
    warnings = at.code[0].value  # plain text, never Markdown
    for name in ("lr=abc", "layers=99", "activation=bogus", "epochs=-5", "eps=0", "surprise"):
        assert name in warnings
    config = run_of(at).config
    assert (config.lr, config.hidden, config.activation, config.epochs, config.eps) == (
        0.01, (25, 25, 25), "tanh", 200, 1e-8)
    assert "lr" not in at.query_params and "surprise" not in at.query_params


def test_settings_changes_are_written_to_the_url():
    at = open_app()
    widget(at, "hidden_0").set_value(12).run()
    widget(at, "activation").set_value("sigmoid").run()
    assert at.query_params["hidden"] == "12,6"
    assert at.query_params["activation"] == "sigmoid"
    widget(at, "hidden_0").set_value(6).run()              # back to the default: dropped
    assert "hidden" not in at.query_params


@pytest.mark.parametrize("page, heading", [("pages/about.py", "About minidl"),
                                           ("pages/compare.py", "Compare"),
                                           ("pages/cross_validation.py", "Cross-validation"),
                                           ("pages/reproduce.py", "Reproduce")])
def test_other_pages_render(page, heading):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.title[0].value == heading


def test_the_playground_comes_back_as_it_was_after_another_page():
    at = open_app(hidden="9,9,9")
    settle(click(at, "pg_step"))
    at.switch_page("pages/about.py").run()
    at.switch_page("pages/playground.py").run()
    assert not at.exception
    assert run_of(at).epoch == 1 and run_of(at).config.hidden == (9, 9, 9)
    assert widget(at, "hidden_0").value == 9


def test_the_reports_conventions_come_from_the_link_and_train_from_the_sidebar():
    at = open_app(inputs="standardised", targets="signed", loss="sum", lr="0.001")
    run = run_of(at)
    assert (run.config.inputs, run.config.targets, run.config.loss) == (
        "standardised", "signed", "sum")
    assert widget(at, "init_bias").value == "drawn"
    widget(at, "init_bias").set_value("zero").run()
    assert run_of(at) is not run and run_of(at).config.init_bias == "zero"  # a new network
    assert "biases at init: drawn like the weights → zero" in at.toast[0].value
    settle(click(at, "pg_step"))
    assert run_of(at).epoch == 1 and not run_of(at).diverged
    assert at.query_params["init_bias"] == "zero"


def test_a_crafted_link_is_shown_as_plain_text_not_markdown():
    """Backticks, links and headings in a link's value stay text; 500 unknown parameters make
    one message that lists ten of them."""
    crafted = "`](https://evil.example)\n# Owned ![x](https://evil.example/i.png)"
    at = open_app(lr=crafted, **{f"junk{i}": "1" for i in range(500)})
    assert not at.exception and len(at.warning) == 1
    rendered_as_markdown = [e.value for kind in ("markdown", "warning", "info", "error",
                                                 "caption", "title") for e in getattr(at, kind)]
    assert not any("evil" in text for text in rendered_as_markdown)
    block = at.code[0].value
    assert block.count("\n") == 10 and block.endswith("… and 491 more")


def test_new_draw_draws_other_points_and_says_so_in_the_url():
    at = open_app()
    before = run_of(at).X_train.clone()
    click(at, "pg_new_draw")
    seed = run_of(at).config.data_seed
    assert seed != 0 and at.query_params["data_seed"] == str(seed)
    assert not (run_of(at).X_train == before).all() and run_of(at).epoch == 0


def chart_table(at: AppTest, name: str):
    """The named data set ``name`` of the first Vega-Lite chart that has one, as pandas."""
    import pyarrow as pa

    data = next(d.data.data for chart in at.get("vega_lite_chart")
                for d in chart.proto.datasets if d.name == name)
    return pa.ipc.open_stream(data).read_all().to_pandas()


def test_test_points_are_drawn_only_when_asked_for():
    at = open_app()
    assert at.toggle(key="pg_show_test").value is False
    assert set(chart_table(at, "points")["set"]) == {"train"}
    at.toggle(key="pg_show_test").set_value(True).run()
    assert not at.exception and at.query_params["show_test"] == "true"
    assert chart_table(at, "points")["set"].value_counts().to_dict() == {"train": 60, "test": 60}


# ---------------------------------------------------------------- your own points, files

def choose_own_points(at: AppTest) -> AppTest:
    widget(at, "dataset").set_value("custom").run()
    assert not at.exception, at.exception
    return at


def test_own_points_start_as_a_copy_of_the_shown_points_and_train():
    at = open_app()
    shown = run_of(at).X_train[:60]
    choose_own_points(at)
    run = run_of(at)
    assert run.config.dataset == "custom" and len(run.X_train) + len(run.X_test) == 60
    assert sorted(map(tuple, torch.cat([run.X_train, run.X_test]).tolist())) == sorted(
        map(tuple, shown.tolist()))
    assert len(run.X_train) == 48                          # the default training share, 0.8
    assert at.expander[0].label.startswith("Your points: 60")
    assert "n_train" not in {w.key[3:] for w in at.sidebar.number_input}  # no point counts
    settle(click(at, "pg_step"))
    assert run_of(at).epoch == 1


def test_an_uploaded_csv_replaces_the_points_and_a_bad_one_changes_nothing():
    at = choose_own_points(open_app())
    rows = "x1,x2,label\n" + "\n".join(f"{i / 20:.2f},{(i * 7 % 20) / 20:.2f},{i % 2}"
                                         for i in range(20))
    at.file_uploader[0].set_value(("mine.csv", rows.encode(), "text/csv")).run()
    assert not at.exception
    run = run_of(at)
    assert len(run.X_train) + len(run.X_test) == 20 and run.epoch == 0
    assert "your points changed" in at.toast[0].value
    bad = "x1,x2,label\n0.5,0.5,1\n0.2,`# evil`,0\n"
    at.file_uploader[0].set_value(("bad.csv", bad.encode(), "text/csv")).run()
    assert not at.exception and run_of(at) is run           # nothing changed
    assert "could not be used" in at.error[0].value
    assert "line 3" in at.code[0].value and "`# evil`" in at.code[0].value  # plain text


def test_choosing_your_own_points_says_plainly_what_the_network_now_trains_on():
    at = open_app()
    settle(click(at, "pg_step"))
    choose_own_points(at)
    notice = at.toast[0].value
    assert "trains on your own points" in notice and "new weights" in notice.lower()
    assert "hand-made" not in notice and "→" not in notice


def test_a_bad_file_message_goes_once_something_else_succeeds():
    at = choose_own_points(open_app())
    bad = "x1,x2,label\n0.5,0.5,1\n0.2,oops,0\n"
    at.file_uploader[0].set_value(("bad.csv", bad.encode(), "text/csv")).run()
    assert len(at.error) == 1 and "could not be used" in at.error[0].value  # in one place
    settle(click(at, "pg_step"))
    assert run_of(at).epoch == 1
    assert not at.error and not at.code


def test_too_few_points_say_what_is_missing_instead_of_training():
    at = choose_own_points(open_app())
    click(at, "pg_clear_points")
    assert "at least 3 of each" in at.info[0].value
    assert all(b.key != "pg_train" for b in at.button)    # nothing to train yet


def imported(text: str) -> AppTest:
    """A fresh page that has imported the model file ``text``."""
    fresh = open_app()
    uploader = next(u for u in fresh.file_uploader if "Import" in u.label)
    uploader.set_value(("model.json", text.encode(), "application/json")).run()
    return fresh


@pytest.mark.slow
def test_a_model_file_round_trips_through_the_page():
    at = open_app(optimizer="adam", lr="0.003", hidden="6,4", features="x1,x2,sinx1")
    settle(click(at, "pg_step"))
    settle(click(at, "pg_step"))
    text = export.to_json(run_of(at))
    fresh = imported(text)
    assert not fresh.exception, fresh.exception
    run = run_of(fresh)
    assert run.epoch == 2 and run.config.hidden == (6, 4) and run.config.optimizer == "adam"
    assert run.config.features == ("x1", "x2", "sinx1")
    assert torch.equal(run.model.param()[0][0], run_of(at).model.param()[0][0])
    assert widget(fresh, "optimizer").value == "adam" and widget(fresh, "hidden_1").value == 4
    assert metric(fresh, "Epoch") == "2 / 200" and "Imported the model file" in fresh.toast[0].value
    fresh.run()
    assert run_of(fresh) is run                            # the widgets agree with the run


def test_a_model_trained_on_your_own_points_comes_back_with_its_points_and_epoch():
    at = choose_own_points(open_app())
    settle(click(at, "pg_step"))
    settle(click(at, "pg_step"))
    exported = run_of(at)
    text = export.to_json(exported)
    fresh = imported(text)
    assert not fresh.exception, fresh.exception
    run = run_of(fresh)
    assert run.config.dataset == "custom" and run.epoch == 2
    assert torch.equal(run.X_train, exported.X_train) and torch.equal(run.y_test, exported.y_test)
    assert torch.equal(run.model.param()[0][0], exported.model.param()[0][0])
    assert widget(fresh, "dataset").value == "custom" and metric(fresh, "Epoch") == "2 / 200"
    assert fresh.expander[0].label.startswith("Your points: 60")
    assert "Imported the model file" in fresh.toast[0].value
    fresh.run()
    assert run_of(fresh) is run and not fresh.warning      # not reopened on the disk


@pytest.mark.slow
def test_an_imported_run_replays_from_its_import_on_and_says_so():
    at = open_app()
    settle(click(at, "pg_step"))
    settle(click(at, "pg_step"))
    text = export.to_json(run_of(at))
    fresh = imported(text)
    assert replay_toggle(fresh) is None                  # one epoch kept: nothing to scrub
    settle(click(fresh, "pg_step"))
    assert run_of(fresh).snapshots.epochs == [2, 3]
    replay_toggle(fresh).set_value(True).run()
    assert fresh.select_slider(key="pg_replay_epoch").options == ["2", "3"]
    assert any("Epochs before 2 came from a model file" in c.value for c in fresh.caption)


def test_a_damaged_model_file_is_a_message_and_changes_nothing():
    at = open_app()
    run = run_of(at)
    uploader = next(u for u in at.file_uploader if "Import" in u.label)
    uploader.set_value(("x.json", b'{"format": "## not', "application/json")).run()
    assert not at.exception and run_of(at) is run
    assert "model file could not be used" in at.error[0].value
    assert "not JSON" in at.code[-1].value


# ---------------------------------------------------------------- inside the network

def test_features_and_per_layer_widths_shape_the_network_and_its_diagram():
    at = open_app(**REPORT)
    widget(at, "features").set_value(["x1", "x2", "x1sq", "sinx2"]).run()
    widget(at, "hidden_layers").set_value(2).run()
    widget(at, "hidden_1").set_value(7).run()
    assert not at.exception
    run = run_of(at)
    assert run.config.features == ("x1", "x2", "x1sq", "sinx2") and run.config.hidden == (25, 7)
    assert nn.parameter_count(run.model) == (4 * 25 + 25) + (25 * 7 + 7) + (7 * 2 + 2)
    assert at.query_params["features"] == "x1,x2,x1sq,sinx2"
    assert at.query_params["hidden"] == "25,7"
    units = chart_table(at, "network_units")
    assert len(units) == 7 + 25 + 7 + 2                    # every candidate input is drawn
    inputs = units[units["column"] == 0]
    assert list(inputs.loc[inputs["active"], "name"]) == ["x₁", "x₂", "x₁²", "sin x₂"]


ALL_INPUTS = ["x₁", "x₂", "x₁²", "x₂²", "x₁x₂", "sin x₁", "sin x₂"]


def click_unit(at: AppTest, unit: str | None, hover: str | None = None) -> AppTest:
    """A click on the diagram's unit ``unit`` ("column:index"; None: none), the pointer over
    unit ``hover``, as Streamlit reports them."""
    round_ = at.session_state["pg_diagram_round"] if "pg_diagram_round" in at.session_state \
        else 0
    at.session_state[f"pg_diagram_{round_}"] = {"selection": {
        "unit_pick": [{"unit": unit}] if unit else [],
        "unit_hover": [{"unit": hover}] if hover else []}}
    at.run()
    assert not at.exception, at.exception
    return at


def big_chart_image(at: AppTest) -> str:
    """The picture the boundary's chart shows (the boundary, or a unit's map)."""
    return chart_table(at, "boundary_image")["url"][0]


def test_pointing_at_a_unit_shows_its_map_in_the_boundarys_place_until_the_pointer_leaves():
    at = open_app()
    boundary = big_chart_image(at)
    click_unit(at, None, hover="1:3")                              # hidden 1, unit 4
    assert at.session_state["pg_unit"] == "1:3" and big_chart_image(at) != boundary
    assert any(c.value.startswith("Hidden 1, unit 4: its activation") for c in at.caption)
    click_unit(at, "2:0", hover="1:3")                             # pointed at beats clicked
    assert at.session_state["pg_unit"] == "1:3"
    click_unit(at, "2:0")                                          # moved off: the clicked one
    assert at.session_state["pg_unit"] == "2:0"
    click_unit(at, None)                                           # nothing: the boundary
    assert at.session_state["pg_unit"] is None and big_chart_image(at) == boundary
    assert not any("its activation" in c.value for c in at.caption)


def test_clicking_an_input_on_the_diagram_switches_it_on_and_off():
    at = open_app()
    inputs = chart_table(at, "network_units").query("column == 0")
    assert list(inputs["name"]) == ALL_INPUTS
    assert list(inputs["active"]) == [True, True] + [False] * 5   # the others dimmed
    assert set(chart_table(at, "network_links")["source"]) & set(ALL_INPUTS) == {"x₁", "x₂"}
    click_unit(at, "0:2")                                          # x₁² on
    assert run_of(at).config.features == ("x1", "x2", "x1sq")
    assert widget(at, "features").value == ["x1", "x2", "x1sq"]
    assert at.query_params["features"] == "x1,x2,x1sq"
    assert "input features: x₁, x₂ → x₁, x₂, x₁²" in at.toast[0].value
    assert list(chart_table(at, "network_units").query("column == 0")["active"]) == [
        True, True, True] + [False] * 4
    assert "x₁²" in set(chart_table(at, "network_links")["source"])
    assert at.session_state["pg_unit"] is None                     # no map shown large
    click_unit(at, "0:2")                                          # the same input again: off
    assert run_of(at).config.features == ("x1", "x2") and "features" not in at.query_params
    click_unit(at, "0:0")                                          # x₁ off
    click_unit(at, "0:1")                                          # x₂, the last: stays on
    assert run_of(at).config.features == ("x2",)
    assert "only input left" in at.toast[0].value


def test_switching_an_input_on_the_diagram_keeps_training_if_it_was_training():
    at = click(open_app(epochs="10000"), "pg_train")
    old = run_of(at)
    click_unit(at, "0:4")                                          # x₁x₂
    new = run_of(at)
    assert new is not old and new.config.features == ("x1", "x2", "x1x2")
    assert trainer_of(at).running
    wait_until(lambda: new.epoch >= 1)
    settle(click(at, "pg_train"))


@pytest.mark.slow
def test_the_l1_penalty_is_a_live_setting_of_every_optimizer():
    at = open_app(optimizer="rmsprop")
    settle(click(at, "pg_step"))
    run = run_of(at)
    widget(at, "l1").set_value(1e-3).run()
    assert run_of(at) is run and run.config.l1 == 1e-3 and run.optimizer.l1 == 1e-3
    assert at.query_params["l1"] == "0.001" and not at.toast


def test_the_health_panel_records_every_layer_from_the_first_epoch():
    at = open_app(activation="relu", **REPORT)
    assert all("layer_health" not in {d.name for d in c.proto.datasets}
               for c in at.get("vega_lite_chart"))           # nothing to show yet
    settle(click(at, "pg_step"))
    health = chart_table(at, "layer_health")
    assert set(health["layer"]) == {"hidden 1", "hidden 2", "hidden 3", "output"}
    assert set(health["epoch"]) == {1}


def test_a_view_whose_redraws_come_slowly_says_the_server_is_busy():
    at = open_app(epochs="10000")
    click(at, "pg_train")
    wait_until(lambda: run_of(at).epoch >= 1)
    now = time.monotonic()  # the last redraws came 2 s apart (a busier machine: further)
    at.session_state["live_pace"] = {"drawn": [now - 2.0 * i for i in range(4, 0, -1)],
                                     "busy": False}
    at.run()
    assert [c for c in at.caption if "server is busy" in c.value]
    click(at, "pg_train")  # Pause
    settle(at)
    assert not [c for c in at.caption if "server is busy" in c.value]


def test_busy_means_fewer_than_two_redraws_a_second_over_the_last_five():
    assert training.busy([0.0, 0.6, 1.2, 1.8, 2.4])
    assert not training.busy([0.0, 0.2, 0.4, 0.6, 0.8])
    assert not training.busy([0.0, 5.0, 10.0])  # too few to tell


def select_link(at: AppTest, link: str) -> AppTest:
    """A click on the diagram's link ``link`` ("layer:row:column"), as Streamlit reports it."""
    at.session_state["pg_diagram_0"] = {"selection": {"link_pick": [{"link": link}]}}
    at.run()
    assert not at.exception, at.exception
    return at


def weight_input(at: AppTest):
    return next((n for n in at.number_input if n.label.startswith("weight ")), None)


def test_a_links_weight_set_while_training_goes_to_the_run_and_training_goes_on():
    # a learning rate of 1e-5 keeps the trained weight near the value set (it moves ~1e-3 a
    # second here, more on a busy machine), far from where it was
    at = click(open_app(epochs="10000", lr="1e-05"), "pg_train")
    assert weight_input(at) is None                       # no link clicked yet
    select_link(at, "1:2:3")                              # hidden 1, unit 4 → hidden 2, unit 3
    field = weight_input(at)
    assert field.label == "weight unit 4 → unit 3 (hidden 1 → hidden 2)"
    run = run_of(at)
    linear = lambda: health.layers(run_of(at).model)[1][0]  # noqa: E731
    assert field.value == pytest.approx(float(linear().weight[2, 3]), abs=0.05)
    field.set_value(2.5).run()
    assert not at.exception and run_of(at) is run         # the same run, not a new one
    # the diagram's copy (at once, or from the service's next report)
    wait_until(lambda: abs(float(linear().weight[2, 3]) - 2.5) < 0.05, timeout=5)
    epoch = run.epoch
    wait_until(lambda: run_of(at).epoch >= epoch + 2)     # training goes on
    assert trainer_of(at).running
    settle(click(at, "pg_train"))                         # Pause: the service's run comes back
    assert float(linear().weight[2, 3]) == pytest.approx(2.5, abs=0.05)
    now = next(c.value for c in at.caption if c.value.startswith("The weight is now"))
    assert float(now.split()[4].rstrip(";")) == pytest.approx(2.5, abs=0.05)


def test_a_links_weight_box_shows_the_trained_weight_until_you_type():
    at = open_app(epochs="3", lr="0.1")
    select_link(at, "1:2:3")
    linear = lambda: health.layers(run_of(at).model)[1][0]  # noqa: E731
    clicked = weight_input(at).value
    settle(click(at, "pg_train"))                         # the run moves on, nothing typed
    assert weight_input(at).value == pytest.approx(float(linear().weight[2, 3]), abs=1e-6)
    assert weight_input(at).value != pytest.approx(clicked, abs=1e-6)
    weight_input(at).set_value(2.5).run()                 # typed: the box keeps it …
    assert weight_input(at).value == 2.5
    at.session_state["pg_diagram_0"] = {"selection": {}}  # … until the link is clicked again
    at.run()
    assert weight_input(at) is None
    settle(click(at, "pg_reset"))                         # new weights
    select_link(at, "1:2:3")
    assert weight_input(at).value == pytest.approx(float(linear().weight[2, 3]), abs=1e-6)


def share_slider(at: AppTest):
    return at.sidebar.slider(key="pg_share")


def test_the_training_share_moves_both_counts_of_a_drawn_data_set_keeping_their_total():
    at = helpers.open_app({})                                # the disk, 1000 + 1000 points
    assert share_slider(at).value == 0.5 and share_slider(at).label == "training share"
    share_slider(at).set_value(0.8).run()
    assert not at.exception, at.exception
    run = run_of(at)
    assert (run.config.n_train, run.config.n_test) == (1600, 400)
    assert (len(run.X_train), len(run.X_test)) == (1600, 400)
    assert (widget(at, "n_train").value, widget(at, "n_test").value) == (1600, 400)
    assert share_slider(at).value == 0.8
    assert dict(at.query_params) == {"n_train": "1600", "n_test": "400"}
    again = helpers.open_app({"n_train": "1600", "n_test": "400"})  # the link round-trips
    assert share_slider(again).value == 0.8
    assert (run_of(again).config.n_train, run_of(again).config.n_test) == (1600, 400)


def test_changing_a_count_changes_the_shown_share():
    at = open_app()                                          # 60 + 60
    assert share_slider(at).value == 0.5
    widget(at, "n_train").set_value(180).run()
    assert share_slider(at).value == 0.75 and run_of(at).config.n_train == 180


def test_the_training_share_never_leaves_a_count_empty():
    at = open_app(n_train="10", n_test="10")
    share_slider(at).set_value(0.9).run()
    assert not at.exception, at.exception
    assert (run_of(at).config.n_train, run_of(at).config.n_test) == (18, 2)
    assert share_slider(at).value == 0.9 and len(run_of(at).X_test) == 2


def test_moving_the_share_while_training_rebuilds_the_run_and_trains_on():
    at = open_app(epochs="10000")
    click(at, "pg_train")
    share_slider(at).set_value(0.8).run()
    assert not at.exception, at.exception
    assert (run_of(at).config.n_train, run_of(at).config.n_test) == (96, 24)
    assert trainer_of(at).running and "training points" in at.toast[0].value
    click(at, "pg_train")


def test_on_your_own_points_the_training_share_is_the_split_setting():
    at = choose_own_points(open_app())
    with pytest.raises(KeyError):
        share_slider(at)                                     # one share slider at a time
    split = widget(at, "split", at.sidebar)
    assert split.label == share_slider(open_app()).label and split.value == 0.8
    split.set_value(0.5).run()
    assert not at.exception, at.exception
    assert len(run_of(at).X_train) == 30 and at.query_params["split"] == "0.5"


def test_a_live_views_run_ends_early_only_for_a_rerun_the_visitor_asked_for(monkeypatch):
    """``training.visitor_waits`` reads Streamlit's queued rerun: the browser's timer does not
    end a live view's run early; pointing at the diagram (a rerun of the fragment that is not
    automatic) does, also when the timer's request was queued first."""
    from types import SimpleNamespace

    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

    requests = ScriptRequests()
    monkeypatch.setattr(training, "get_script_run_ctx",
                        lambda: SimpleNamespace(script_requests=requests))
    assert not training.visitor_waits()                                   # nothing queued
    requests.request_rerun(RerunData(fragment_id="live", is_auto_rerun=True))
    assert not training.visitor_waits()                                   # the timer's
    requests.request_rerun(RerunData(fragment_id="live"))
    assert training.visitor_waits()                                       # a pointer's
    requests.on_scriptrunner_ready()                                      # the next run began
    assert not training.visitor_waits()
    monkeypatch.setattr(training, "get_script_run_ctx", lambda: None)     # not in a run
    assert not training.visitor_waits()
