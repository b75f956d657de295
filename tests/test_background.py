"""The Playground's background trainer (ui.background): it trains exactly what it is told,
stops by itself when nobody watches, and shares the server's places to train."""

import math
import threading
import time

import pytest
import torch
from helpers import wait_until
from test_race import assert_same_trajectory

from minidl import Config, Run, health
from minidl.engine import cohort
from minidl.experiments.race import Race
from minidl.viz import boundary, network
from ui import background
from ui.background import Slots, Trainer

SMALL = dict(n_train=40, n_test=20, hidden=(8, 8), batch_size=4)


@pytest.mark.slow
def test_a_run_trained_in_the_background_equals_one_trained_in_the_foreground():
    config = Config(**SMALL, epochs=30)
    trainer = Trainer(Run(config))
    trainer.train()
    wait_until(lambda: trainer.state == "idle", timeout=20)
    assert trainer.run.epoch == 30 and not trainer.running
    foreground = Run(config).fit()
    assert trainer.run.history == foreground.history


@pytest.mark.slow
def test_each_step_trains_exactly_one_more_epoch_however_fast_they_come():
    trainer = Trainer(Run(Config(**SMALL, epochs=100)))
    for _ in range(5):
        trainer.step()
    wait_until(lambda: trainer.state == "idle", timeout=20)
    assert trainer.run.epoch == 5 and not trainer.running


def test_no_step_or_train_click_is_lost_when_it_comes_as_a_process_ends():
    # a click a moment after the process's last epoch reaches a process that has decided
    # to end: whatever the timing, every Step trains one epoch and a Train after a Pause trains
    trainer = Trainer(Run(Config(**SMALL, epochs=100_000)))
    for i in range(24):
        trainer.step()
        time.sleep(0.002 * (i % 12))  # into the process's last moments, sooner or later
    wait_until(lambda: trainer.state == "idle", timeout=30)
    assert trainer.run.epoch == 24
    for i in range(8):
        trainer.train()
        time.sleep(0.02)
        trainer.pause()
        time.sleep(0.002 * i)
        trainer.train()
        wait_until(lambda: trainer.running, timeout=5)
        time.sleep(0.05)
        assert trainer.state == "training", i
        trainer.pause()
    trainer.close()


@pytest.mark.slow
def test_pause_stops_training_and_train_goes_on_from_there():
    trainer = Trainer(Run(Config(**SMALL, epochs=100_000)))
    trainer.train()
    wait_until(lambda: trainer.run.epoch >= 3, timeout=20)
    trainer.pause()
    wait_until(lambda: trainer.state == "idle", timeout=20)
    trainer.join()
    paused_at = trainer.run.epoch
    time.sleep(0.1)
    assert trainer.run.epoch == paused_at
    trainer.train()
    wait_until(lambda: trainer.run.epoch > paused_at, timeout=20)
    trainer.close()
    assert [h["epoch"] for h in trainer.run.history] == list(range(1, trainer.run.epoch + 1))


@pytest.mark.slow
def test_the_epochs_kept_for_replay_come_back_from_every_training_process():
    config = Config(**SMALL, epochs=9)
    trainer = Trainer(Run(config))
    for _ in range(4):  # one process …
        trainer.step()
    wait_until(lambda: trainer.state == "idle", timeout=20)
    trainer.train()      # … and another to the end
    wait_until(lambda: trainer.state == "idle", timeout=20)
    trainer.join()
    foreground = Run(config).fit()
    kept = trainer.run.snapshots
    assert kept.epochs == foreground.snapshots.epochs == list(range(1, 10))
    for epoch in kept.epochs:
        assert torch.equal(kept.weights(epoch), foreground.snapshots.weights(epoch))


def test_training_stops_when_the_browser_session_is_gone():
    open_tab = threading.Event()
    open_tab.set()
    trainer = Trainer(Run(Config(**SMALL, epochs=100_000)), alive=open_tab.is_set)
    trainer.train()
    wait_until(lambda: trainer.run.epoch >= 1, timeout=20)
    key = trainer._connection
    assert key in background._SERVICE.members()
    open_tab.clear()                     # the tab was closed
    wait_until(lambda: trainer.state == "idle", timeout=20)
    assert trainer.stop_reason == "closed" and not trainer.running
    assert key not in background._SERVICE.members()  # its run has left the service


def test_training_pauses_when_nobody_has_looked_for_a_while():
    now = [0.0]
    trainer = Trainer(Run(Config(**SMALL, epochs=100_000)), idle_seconds=60,
                      clock=lambda: now[0])
    trainer.train()
    wait_until(lambda: trainer.run.epoch >= 1, timeout=20)
    now[0] = 50.0
    trainer.touch()                      # looked at 50 s: still wanted at 100 s
    now[0] = 100.0
    time.sleep(0.2)
    assert trainer.state == "training"
    now[0] = 111.0                       # 61 s without a look
    wait_until(lambda: trainer.state == "idle", timeout=20)
    assert trainer.stop_reason == "idle"


def test_sessions_beyond_the_servers_limit_wait_for_a_free_place():
    slots = Slots(1)
    first = Trainer(Run(Config(**SMALL, epochs=100_000)), slots)
    second = Trainer(Run(Config(**SMALL, epochs=100_000)), slots)
    first.train()
    wait_until(lambda: first.run.epoch >= 1, timeout=20)
    second.train()
    wait_until(lambda: second.state == "waiting", timeout=20)
    time.sleep(0.2)
    assert second.run.epoch == 0 and slots.busy() == 1
    first.pause()
    wait_until(lambda: second.run.epoch >= 1, timeout=20)
    assert second.state == "training" and first.state == "idle" and slots.busy() == 1
    second.close()
    assert slots.busy() == 0


def test_a_view_is_a_frozen_copy_that_training_does_not_touch():
    trainer = Trainer(Run(Config(**SMALL, epochs=100_000)))
    trainer.step()
    wait_until(lambda: trainer.state == "idle", timeout=20)
    view = trainer.view()
    X = torch.rand(50, 2)
    before, history = view.predict(X).clone(), list(view.history)
    trainer.train()
    wait_until(lambda: trainer.run.epoch >= 5, timeout=20)
    assert torch.equal(view.predict(X), before) and view.history == history
    assert view.epoch == 1 and view.metrics()["epoch"] == 1
    trainer.close()


def test_replace_lets_the_old_run_go_before_the_new_one_is_trained():
    trainer = Trainer(Run(Config(**SMALL, epochs=100_000)))
    trainer.train()
    wait_until(lambda: trainer.run.epoch >= 2, timeout=20)
    old = trainer.run
    trainer.replace(Run(Config(**SMALL, epochs=100)))
    stopped_at = old.epoch
    time.sleep(0.1)
    assert old.epoch == stopped_at and trainer.run.epoch == 0 and trainer.state == "idle"


def test_a_replaced_run_trains_on_when_asked_and_the_old_one_was_training():
    trainer = Trainer(Run(Config(**SMALL, epochs=100_000)))
    trainer.replace(Run(Config(**SMALL, epochs=100_000)), keep_training=True)
    assert trainer.state == "idle"  # it was not training: nothing starts
    trainer.train()
    wait_until(lambda: trainer.run.epoch >= 1, timeout=20)
    old = trainer.run
    trainer.replace(Run(Config(**SMALL, epochs=100_000)), keep_training=True)
    assert trainer.run is not old and trainer.running
    wait_until(lambda: trainer.run.epoch >= 2, timeout=20)
    trainer.close()
    assert trainer.state == "idle"


def test_a_finished_or_diverged_run_does_not_start():
    done = Trainer(Run(Config(**SMALL, epochs=1)))
    done.step()
    wait_until(lambda: done.state == "idle", timeout=20)
    done.train()
    assert done.state == "idle" and done.run.epoch == 1
    diverging = Trainer(Run(Config(**SMALL, lr=1e3, epochs=100)))
    diverging.train()
    wait_until(lambda: diverging.state == "idle", timeout=20)
    assert diverging.run.diverged and diverging.run.epoch < 100


# ---------------------------------------------------------------- the training service

class Sent(list):
    """What the service sends the app, kept (the results pipe's ``send``)."""

    send = list.append
    busy = False  # the last message still on its way (``_Outbox.idle``)

    def idle(self) -> bool:
        return not self.busy

    def done(self) -> dict[int, Run]:
        return {key: background.loads(value) for kind, key, value in self if kind == "done"}


def classroom(*runs: Run, steps: int = 0) -> tuple[background._Classroom, Sent]:
    sent = Sent()
    room = background._Classroom(sent)
    for key, run in enumerate(runs):
        room.command("join", key, (background.dumps(run), steps))
    room.regroup()
    return room, sent


def turns_until(room: background._Classroom, done) -> None:
    for _ in range(100_000):
        if room.dirty:
            room.regroup()
        if done():
            return
        room.train_turn()
    raise AssertionError("the service never got there")


def test_the_service_co_batches_runs_of_one_shape_and_trains_the_others_in_turns():
    configs = [Config(**SMALL, epochs=100), Config(**SMALL, epochs=100, lr=0.05, dataset="xor"),
               Config(**SMALL, epochs=100, optimizer="adam", lr=0.01, activation="relu"),
               Config(**{**SMALL, "hidden": (5,)}, epochs=100)]
    race = Race([configs[0], configs[2]])
    room, sent = classroom(*(Run(c) for c in configs), race)
    assert sorted(len(u) for u in room.units) == [1, 2, 3]  # a cohort of 3, one alone, a race
    trainees = [e.trainee for e in room.entries.values()]
    turns_until(room, lambda: all(t.epoch >= 3 for t in trainees))
    for key in range(5):
        room.command("pause", key, None)
    room.regroup()
    back = sent.done()
    assert not room.entries and not room.units and sorted(back) == list(range(5))
    for key, config in enumerate(configs):
        run = back[key]
        assert len(run.population) == 1 and run.epoch >= 3
        assert_same_trajectory(run.history, Run(config).fit(epochs=run.epoch).history)
    assert back[4].epoch >= 3 and back[4].history == Race([configs[0], configs[2]]).fit(
        epochs=back[4].epoch).history


def test_a_step_trains_one_epoch_and_pause_and_settings_apply_between_steps():
    config = Config(**SMALL, epochs=100)
    room, sent = classroom(Run(config), Run(config.replace(init_seed=5)), steps=2)
    turns_until(room, lambda: not room.entries)  # two epochs each, then sent back
    back = sent.done()
    assert [back[k].epoch for k in (0, 1)] == [2, 2]
    # a run sent back trains on where it stopped, with a new learning rate between epochs
    room.command("join", 2, (background.dumps(back[0]), 0))
    room.regroup()
    room.command("set", 2, {"lr": 0.03})
    turns_until(room, lambda: room.entries[2].trainee.epoch >= 4)
    room.command("pause", 2, None)
    room.regroup()
    alone = Run(config).fit(epochs=2)
    alone.set_hyperparameters(lr=0.03)
    alone.fit(epochs=sent.done()[2].epoch - 2)
    assert_same_trajectory(sent.done()[2].history, alone.history)


def test_a_cohort_between_epochs_waits_for_one_of_its_shape_to_end_its_epoch_then_joins_it():
    config = Config(**SMALL, epochs=100)
    middle = Run(config)
    middle.train_steps(max_seconds=0.0)  # one minibatch into its epoch
    room, _ = classroom(middle, Run(config.replace(init_seed=3)))
    assert sorted(len(u) for u in room.units) == [1, 1]
    waiting = room.entries[1].trainee
    while room.entries[0].trainee.epoch < 1:
        room.train_turn()
        assert waiting.epoch == 0 and cohort.place(waiting) is None  # held, not trained
    room.regroup()
    assert [len(u) for u in room.units] == [2]


@pytest.mark.slow
def test_trainers_of_a_server_train_at_once_in_one_process_as_they_would_alone():
    configs = [Config(**SMALL, epochs=100_000),
               Config(**SMALL, epochs=100_000, lr=0.05, data_seed=4),
               Config(**SMALL, epochs=100_000, optimizer="rmsprop", lr=0.003)]
    trainers = [Trainer(Run(c)) for c in configs]
    for trainer in trainers:
        trainer.train()
    wait_until(lambda: all(t.run.epoch >= 3 for t in trainers), timeout=30)
    assert len({t.process.pid for t in trainers}) == 1  # one service process trains them all
    keys = {t._connection for t in trainers}
    assert keys <= background._SERVICE.members()
    for trainer in trainers:
        trainer.close()
    assert not keys & background._SERVICE.members()  # every run has left the service
    for trainer, config in zip(trainers, configs):
        alone = Run(config).fit(epochs=trainer.run.epoch)
        assert_same_trajectory(trainer.run.history, alone.history)


def test_the_service_scores_each_runs_boundary_for_the_weights_it_sends():
    trainer = Trainer(Run(Config(**SMALL, epochs=100_000)))
    trainer.train()
    wait_until(lambda: trainer.run.epoch >= 2 and trainer.frame()[1] is not None, timeout=30)
    for _ in range(3):
        view, scores, _ = trainer.frame()
        with torch.inference_mode():
            mine = boundary.scores(view.predict, background.GRID)
        torch.testing.assert_close(scores, mine, rtol=1e-4, atol=1e-5)
        time.sleep(0.1)
    trainer.close()
    assert trainer.frame()[1] is None  # a run sent back: the page scores it itself


def test_the_service_computes_each_runs_unit_maps_in_one_batched_pass_for_its_cohort():
    configs = [Config(**SMALL, epochs=100), Config(**SMALL, epochs=100, lr=0.05, init_seed=3,
                                                   inputs="standardised", activation="relu")]
    room, sent = classroom(*(Run(c) for c in configs))
    assert [len(u) for u in room.units] == [2]
    turns_until(room, lambda: all(e.trainee.epoch >= 1 for e in room.entries.values()))
    room.report()
    (_, reports, _), = [m for m in sent if m[0] == "progress"]
    for key, (*_, units) in reports:
        run = room.entries[key].trainee
        options = network.run_options(run)
        mine = network.unit_values(run.model, options["encode"], network.RESOLUTION,
                                   options["active"])[1:]  # every layer, inputs aside
        sizes = network.model_sizes(run.model)[1:]
        theirs = torch.frombuffer(bytearray(units), dtype=torch.float16).view(
            -1, sum(sizes)).float().split(sizes, dim=1)
        for a, b in zip(theirs, mine, strict=True):
            torch.testing.assert_close(a, b, rtol=2e-3, atol=2e-3)  # float16 on the way
    sent.clear()
    for entry in room.entries.values():  # progress due again, unit maps just sent (as if:
        entry.reported, entry.units_reported = 0.0, math.inf  # a busy machine takes seconds)
    room.report()
    (_, reports, _), = sent
    assert [units for _, (*_, units) in reports] == [None, None]


def test_a_trainer_hands_the_page_the_unit_maps_the_service_sent():
    trainer = Trainer(Run(Config(**SMALL, epochs=100_000)))
    trainer.train()
    wait_until(lambda: trainer.run.epoch >= 1 and trainer.frame()[2] is not None, timeout=30)
    view, _, units = trainer.frame()
    assert [c.shape for c in units] == [(network.RESOLUTION ** 2, n)
                                        for n in network.model_sizes(view.model)[1:]]
    options = network.run_options(view)
    drawn = network.unit_values(view.model, options["encode"], network.RESOLUTION,
                                options["active"], layers=units)
    assert all(a is b for a, b in zip(drawn[1:], units, strict=True))  # drawn, not recomputed
    tables = network.network_data(view.model, input_names=network.input_names(view),
                                  layers=units, **options)
    assert len(tables[network.UNITS]) == len(drawn[0][0]) + sum(
        network.model_sizes(view.model)[1:])
    trainer.close()
    assert trainer.frame()[2] is None  # a run sent back: the page draws its maps itself


def test_the_service_reports_progress_only_once_its_last_report_has_gone():
    room, sent = classroom(Run(Config(**SMALL, epochs=100)))
    room.train_turn()
    sent.busy = True  # the app has not read the last message yet
    room.report()
    assert not [kind for kind, *_ in sent if kind == "progress"]
    sent.busy = False
    room.report()
    assert [kind for kind, *_ in sent] == ["progress"]


def test_the_outbox_sends_in_order_without_making_the_service_wait_and_says_when_the_app_left():
    import multiprocessing

    theirs, mine = multiprocessing.Pipe(duplex=False)
    outbox = background._Outbox(mine)
    big = b"x" * 1_000_000  # far more than a pipe holds: a send waits for the reader
    for i in range(3):  # a send that waited for the reader would never return here
        outbox.send(("progress", i, big))
    assert not outbox.idle()  # nobody has read yet
    assert [theirs.recv()[1] for _ in range(3)] == [0, 1, 2]
    wait_until(outbox.idle, timeout=30)
    theirs.close()
    outbox.send(("progress", 3, big))
    wait_until(lambda: outbox.closed, timeout=30)


def test_unit_maps_come_as_often_as_the_pages_draw_the_diagram_which_is_less_often_in_a_class():
    sessions = 2 * background.SLOW_SESSIONS  # the diagram is drawn every 2 SLOW_SECONDS
    room, sent = classroom(*(Run(Config(**SMALL, epochs=100, init_seed=i))
                             for i in range(sessions)))
    turns_until(room, lambda: all(e.trainee.epoch >= 1 for e in room.entries.values()))

    def units_sent_after(seconds: float) -> bool:
        sent.clear()
        for entry in room.entries.values():
            entry.reported, entry.units_reported = 0.0, entry.units_reported - seconds
        room.report()
        (_, reports, _), = sent
        return all(units is not None for _, (*_, units) in reports)

    assert units_sent_after(0.0)  # never sent yet
    assert not units_sent_after(1.5 * background.SLOW_SECONDS)
    assert units_sent_after(1.0 * background.SLOW_SECONDS)  # 2.5 since the last


def weight(trainer: Trainer, layer: int, row: int, column: int) -> float:
    return float(health.layers(trainer.run.model)[layer][0].weight[row, column])


def test_a_weight_set_while_training_reaches_the_run_in_the_service_and_training_goes_on():
    # two runs of one shape train as one cohort: the weight is one run's, not its neighbour's;
    # a tiny learning rate keeps the trained weights near where they were set (they drift
    # ~1e-3 in the seconds this takes), far from 2.5
    config = Config(**SMALL, epochs=100_000, lr=1e-5)
    trainer, neighbour = Trainer(Run(config)), Trainer(Run(config))
    before = weight(neighbour, 1, 3, 5)
    for t in (trainer, neighbour):
        t.train()
    wait_until(lambda: trainer.run.epoch >= 2 and neighbour.run.epoch >= 2)
    trainer.set_weight(1, 3, 5, 2.5)
    # the mirror (the diagram) at once, or after a report the service sent before it read
    # the command, from the next one on
    wait_until(lambda: abs(weight(trainer, 1, 3, 5) - 2.5) < 0.05, timeout=5)
    epoch = trainer.run.epoch
    wait_until(lambda: trainer.run.epoch >= epoch + 3)     # training goes on
    assert trainer.running
    for t in (trainer, neighbour):
        t.pause()
    wait_until(lambda: trainer.state == neighbour.state == "idle")
    assert weight(trainer, 1, 3, 5) == pytest.approx(2.5, abs=0.05)   # the service's run
    assert weight(neighbour, 1, 3, 5) == pytest.approx(before, abs=0.05)


def test_a_weight_set_while_idle_is_where_the_next_epoch_starts():
    trainer = Trainer(Run(Config(**SMALL, epochs=10, lr=1e-5)))
    trainer.set_weight(0, 2, 1, -1.75)
    trainer.step()
    wait_until(lambda: trainer.state == "idle")
    assert trainer.run.epoch == 1 and weight(trainer, 0, 2, 1) == pytest.approx(-1.75, abs=0.05)


@pytest.mark.parametrize("link, value", [((3, 0, 0), 1.0), ((0, 8, 0), 1.0), ((0, 0, 2), 1.0),
                                         ((0, -1, 0), 1.0), ((0, 0, 0), float("nan")),
                                         ((0, 0, 0), "1")])
def test_a_weight_the_network_does_not_have_or_not_a_number_is_refused(link, value):
    trainer = Trainer(Run(Config(**SMALL)))
    with pytest.raises(ValueError, match="Invalid (link|weight)"):
        trainer.set_weight(*link, value)
