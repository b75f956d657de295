"""minidl.hparams: the settings table, and that everything else derives from it."""

import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import Config, data, hparams, nn, optim
from minidl.experiments import cv

TABLE = hparams.TABLE


# ---------------------------------------------------------------- the table is well formed

@pytest.mark.parametrize("name", TABLE)
def test_every_row_is_consistent(name):
    s = TABLE[name]
    assert s.name == name and s.kind in hparams.KINDS and s.part in hparams.PARTS
    assert set(s.where) <= set(hparams.WHERE) and s.label
    assert hparams.check(name, s.default) == s.default
    if s.kind == "choice":
        assert len(s.choice_labels) == len(s.choices) and s.default in s.choices
    if s.stops:
        assert list(s.stops) == sorted(s.stops)
        assert all(hparams.check(name, v) == v for v in s.stops)
    for bound in (s.app_low, s.app_high):
        if bound is not None and s.kind in ("int", "float"):
            hparams.check(name, bound)  # the app offers only valid values
    for values in (s.grid or {}).values():
        assert all(hparams.check(name, v) == v for v in values)
    if s.part == "optimizer":
        assert s.optimizers and set(s.optimizers) <= set(hparams.OPTIMIZERS)


def test_the_frameworks_registries_name_the_tables_choices():
    assert tuple(nn.ACTIVATIONS) == hparams.ACTIVATIONS
    assert (*data.DATASETS, "custom") == hparams.DATASETS  # custom: your own points
    assert tuple(data.FEATURES) == hparams.FEATURES
    assert tuple(optim.OPTIMIZERS) == hparams.OPTIMIZERS
    assert nn.INIT_METHODS == hparams.INIT_METHODS


def test_config_has_a_field_per_config_row_with_the_tables_default():
    assert Config.field_names() == hparams.names("config")
    assert Config().to_dict() == hparams.defaults("config")
    assert "weight_decay" in Config.field_names()


def test_cli_flags_come_from_the_table(run_cli):
    out = run_cli("train", "--help")
    for name in hparams.names("cli"):
        assert "--" + name.replace("_", "-") in out.stdout
    assert "one of relu, tanh, sigmoid, identity" in " ".join(out.stdout.split())


def test_grid_keys_are_an_optimizers_own_settings_then_training_init_and_data():
    conventions = ("init_scale", "init_dist", "init_bias")
    assert hparams.grid_keys("sgd") == ("lr", "momentum", "weight_decay", "l1", "batch_size",
                                        "loss", "targets", "init", "gain", *conventions,
                                        "inputs")
    assert hparams.grid_keys("adam")[:9] == ("lr", "beta1", "beta2", "eps", "weight_decay", "l1",
                                             "batch_size", "loss", "targets")
    assert hparams.optimizer_keys("rmsprop") == ("lr", "rho", "eps", "weight_decay", "l1")


# ---------------------------------------------------------------- checks and messages

@pytest.mark.parametrize("name,value,message", [
    ("lr", -1, r"^Invalid learning rate \(lr\): -1 \(expected a finite number in \(0, 1e\+06\]\)$"),
    ("lr", "0.1", r"got str\)$"), ("lr", True, r"got bool\)$"), ("lr", math.nan, "nan"),
    ("momentum", 1.0, r"in \[0, 1\)"), ("batch_size", 2.5, r"an integer in \[1, 10000000\]"),
    ("activation", "gelu", "one of relu, tanh, sigmoid, identity"),
    ("hidden", (True,), "integers in"), ("hidden", (), "1 to 32 integers"),
    ("hidden", (25, 5000), r"\[1, 4096\]"), ("n_train", 10**12, "training points"),
    ("shuffle", "no", "true or false"), ("data_seed", 2**70, "data seed"),
    ("noise", 0.6, r"\[0, 0.5\]"), ("weight_decay", -1e-9, r"in \[0, 1e\+06\]"), ("lr", "x" * 500, "…"),
])
def test_a_bad_value_is_a_value_error_naming_the_setting(name, value, message):
    with pytest.raises(ValueError, match=message):
        hparams.check(name, value)


def test_check_brings_values_to_the_settings_type():
    assert hparams.check("batch_size", 20.0) == 20 and isinstance(
        hparams.check("batch_size", 20.0), int)
    assert hparams.check("lr", 1) == 1.0 and isinstance(hparams.check("lr", 1), float)
    assert hparams.check("hidden", [5, 5]) == (5, 5)


def test_labels_symbols_and_pairs_read_as_people_write_them():
    assert hparams.label("lr") == "learning rate" and hparams.label("rmsprop") == "RMSProp"
    assert hparams.pair_label(("tanh", "sgd")) == "SGD + Tanh"
    assert hparams.describe({"lr": 0.01, "batch_size": 10.0, "beta1": 0.9, "eps": math.nan},
                            hparams.grid_keys("adam")) == "lr 0.01, β₁ 0.9, batch 10"
    assert hparams.display("hidden", (25, 25)) == "25-25"


def test_a_choice_reads_as_its_own_setting_labels_it():
    """"custom" is your own points as a data set, a hand-made list as a race's contestants."""
    assert hparams.display("dataset", "custom") == "your own points"
    assert hparams.display("preset", "custom") == "a hand-made list"


@pytest.mark.slow
def test_every_path_checks_a_new_hyperparameter_the_same_way():
    """weight_decay = -1 is refused by the optimizer, Config, a grid, a URL and the CLI."""
    from ui import playground

    with pytest.raises(ValueError, match=r"weight decay \(L2\) \(weight_decay\)"):
        optim.SGD([(nn.Linear(2, 2).weight, nn.Linear(2, 2).grad_weight)], lr=0.1,
                  weight_decay=-1)
    with pytest.raises(ValueError, match="weight_decay"):
        Config(weight_decay=-1)
    with pytest.raises(ValueError, match="weight_decay"):
        cv.complete({"weight_decay": -1})
    with pytest.raises(ValueError, match="weight_decay"):
        hparams.check_grid({"weight_decay": [0.0, -1.0]})
    settings, warnings = playground.parse_query({"weight_decay": "-1"})
    assert settings["weight_decay"] == 0.0 and "weight_decay=-1" in warnings[0]
    out = subprocess.run([sys.executable, "-m", "minidl", "train", "--weight-decay", "-1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "argument --weight-decay: Invalid weight decay" in out.stderr


# ---------------------------------------------------------------- text, as properties

def values_of(s: hparams.Setting) -> st.SearchStrategy:
    """Valid values of one setting, drawn from its row of the table."""
    if s.kind == "choice":
        return st.sampled_from(s.choices)
    if s.kind == "bool":
        return st.booleans()
    if s.kind == "text":
        return st.text(max_size=int(s.high))
    if s.kind == "widths":
        return st.lists(st.integers(1, 4096), min_size=1, max_size=8).map(tuple)
    if s.kind == "set":  # kept in the table's order
        return st.sets(st.sampled_from(s.choices), min_size=1).map(
            lambda chosen: tuple(c for c in s.choices if c in chosen))
    if s.kind == "int":
        high = int(s.high) - (1 if s.high_open else 0) if s.high is not None else 10**12
        return st.integers(int(s.low), high)
    high = s.high if s.high is not None else 1e12
    return st.floats(s.low, high, exclude_min=s.low_open, exclude_max=s.high_open,
                     allow_nan=False, allow_infinity=False)


@given(st.data())
def test_parse_reads_back_what_format_value_writes_for_every_setting(draw):
    name = draw.draw(st.sampled_from(list(TABLE)))
    value = draw.draw(values_of(TABLE[name]))
    assert hparams.parse(name, hparams.format_value(value)) == value


@given(st.sampled_from(list(TABLE)), st.text(max_size=30))
def test_parse_never_fails_other_than_with_a_value_error(name, text):
    try:
        value = hparams.parse(name, text)
    except ValueError as error:
        assert str(error).startswith("Invalid ") and len(str(error)) < 300
    else:
        assert hparams.check(name, value) == value


@given(st.sampled_from([n for n, s in TABLE.items() if s.searchable and s.kind != "choice"]),
       st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=5))
def test_a_grid_is_either_checked_value_by_value_or_refused(name, values):
    try:
        clean = hparams.check_grid({name: values})
    except ValueError as error:
        assert str(error).startswith("Invalid ")
    else:
        assert all(hparams.check(name, v) == v for v in clean[name])
        assert len(clean[name]) == len(set(clean[name]))
