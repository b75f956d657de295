"""The outside tester's probes of a public server and the command line (issue 24), kept as
tests: each finding is a test here, with hypothesis properties for the readers of saved
files and the parsing of numbers from URLs, forms and flags."""

import time

import helpers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import hparams

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)

NINES = "9" * 400  # 400 digits: an int too large for a float, under Python's 4,300-digit cap
HUGE = [NINES, "-" + NINES, "9" * 5000, "1" + "0" * 310, "1e999999"]
NUMERIC = [n for n, s in hparams.TABLE.items() if s.kind in ("int", "float")]


# ---------------------------------------------------------------- 1. numbers of any length

def test_every_numeric_setting_has_both_bounds():
    for name in NUMERIC:
        s = hparams.setting(name)
        assert s.low is not None and s.high is not None, name


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("text", HUGE)
def test_a_number_of_any_length_is_a_value_error_naming_the_setting(name, text):
    with pytest.raises(ValueError, match=rf"Invalid .*{name}.*expected"):
        hparams.parse(name, text)
    with pytest.raises(ValueError, match=name):
        hparams.parse_values(name, f"1, {text}")


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NUMERIC),
       text=st.one_of(st.text(max_size=60), st.from_regex(r"-?[0-9]{1,600}(\.[0-9]*)?(e-?[0-9]{1,7})?",
                                                          fullmatch=True)))
def test_parsing_any_text_gives_a_value_in_range_or_a_value_error(name, text):
    s = hparams.setting(name)
    try:
        value = hparams.parse(name, text)
    except ValueError:
        return
    assert s.low <= value <= s.high


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NUMERIC),
       value=st.one_of(st.integers(), st.integers(min_value=10**300, max_value=10**5000),
                       st.floats(allow_nan=True, allow_infinity=True)))
def test_checking_any_number_gives_a_value_in_range_or_a_value_error(name, value):
    s = hparams.setting(name)
    try:
        checked = hparams.check(name, value)
    except ValueError:
        return
    assert s.low <= checked <= s.high


def test_a_values_field_is_refused_by_its_length_before_it_is_read():
    text = "0.1, " * 2_000_000  # 10 MB pasted in a grid field
    began = time.process_time()
    with pytest.raises(ValueError, match="10,000,000 characters"):
        hparams.parse_values("lr", text)
    assert time.process_time() - began < 0.5 * _seconds_to_split(text)


def _seconds_to_split(text: str) -> float:
    began = time.process_time()
    [t.strip() for t in text.split(",")]
    return time.process_time() - began


@pytest.mark.parametrize("query", [{"lr": NINES}, {"n_train": NINES}, {"init_seed": NINES},
                                   {"gain": NINES}, {"epochs": NINES}])
def test_a_playground_link_with_a_huge_number_is_a_warning(query):
    at = helpers.open_app(query)
    [name] = query
    assert at.warning and at.warning[0].value.startswith("1 setting in this link")
    assert f"{name}=999" in at.code[0].value and ": not a" in at.code[0].value


@pytest.mark.parametrize("query", [{"target_acc": NINES}, {"preset": "custom",
                                                            "contestants": f"lr={NINES}"}])
def test_a_compare_link_with_a_huge_number_is_a_warning(query):
    at = helpers.open_app(query, "pages/compare.py")
    assert (at.warning or at.error) and "9999" in "\n".join(c.value for c in at.code)


def test_a_huge_number_in_a_cross_validation_grid_is_a_message():
    at = helpers.open_app({}, "pages/cross_validation.py")
    at.text_input(key="cv_grid_adam_lr").set_value(f"0.1, {NINES}").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["These settings cannot run yet:"]
    assert "expected" in at.code[0].value and at.button(key="cv_launch").disabled


def test_a_huge_grid_field_is_refused_by_its_length():
    at = helpers.open_app({}, "pages/cross_validation.py")
    at.text_input(key="cv_grid_adam_lr").set_value("0.1, " * 200_000).run()
    assert not at.exception and "Invalid learning rate" in at.code[0].value


@pytest.mark.parametrize("args", [
    ["train", "--lr", NINES], ["train", "--epochs", NINES], ["train", "--gain", NINES],
    ["sweep", "--seed", NINES], ["sweep", "--grid", f"lr={NINES}"], ["sweep", "--lr", NINES],
    ["sweep", "--epochs", "1" + "0" * 30], ["reproduce", "--runs", NINES],
    ["sweep", "--folds", NINES], ["train", "--every", NINES]])
def test_a_huge_number_on_the_command_line_is_a_one_line_error(run_cli, args):
    result = run_cli(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "expected" in result.stderr or "at most" in result.stderr, result.stderr
