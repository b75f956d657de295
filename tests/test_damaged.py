"""Damaged or foreign files in saved jobs never crash the library, a page or the command line.

Each damage kind is applied to a copy of a good tiny sweep, study or ablation.  A damaging
one makes the job read as status "damaged" with a reason (or a clear ``ValueError`` where
results are loaded), the pages show "damaged: <reason>" as plain text while the good job
beside it still shows, and the command line says so in one line and exits 2.  A harmless
one (a torn last line, a stray file, an empty table) is read as if it were not there.
"""

import csv
import json
import shutil
from pathlib import Path

import helpers
import pytest
from streamlit.testing.v1 import AppTest

from minidl import jobs
from minidl.cli import main
from minidl.experiments import ablation, reproduce, studies, sweeps
from minidl.jobs import runner

APP = helpers.APP
GOOD = "29990101-000000-good00"  # newest: shown first by the pages (with its kind's name)


def set_meta(**changes):
    def damage(folder: Path, meta: str) -> None:
        path = folder / meta
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    return damage


def meta_bytes(data: bytes):
    def damage(folder: Path, meta: str) -> None:
        (folder / meta).write_bytes(data)
    return damage


def remove_meta(folder: Path, meta: str) -> None:
    (folder / meta).unlink()


def edit_rows(file: str, change):
    """Rewrite ``file``'s rows (a list of lists, header first) through ``change``."""
    def damage(folder: Path, meta: str) -> None:
        with open(folder / file, newline="") as f:
            rows = list(csv.reader(f))
        change(rows)
        with open(folder / file, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    return damage


def drop_column(file: str, name: str):
    def change(rows):
        i = rows[0].index(name)
        for row in rows:
            del row[i]
    return edit_rows(file, change)


def set_value(file: str, name: str, value: str, row: int = 1):
    def change(rows):
        rows[row][rows[0].index(name)] = value
    return edit_rows(file, change)


def file_bytes(file: str, data: bytes, append: bool = False):
    def damage(folder: Path, meta: str) -> None:
        with open(folder / file, "ab" if append else "wb") as f:
            f.write(data)
    return damage


def to_folder(file: str):
    def damage(folder: Path, meta: str) -> None:
        (folder / file).unlink()
        (folder / file).mkdir()
    return damage


def stray_file(name: str, copy_of: str):
    def damage(folder: Path, meta: str) -> None:
        shutil.copy(folder / copy_of, folder / name)
    return damage


SWEEP_CSV, RUNS, LOSSES, ACCURACY = "tanh-sgd.csv", "runs.csv", "losses.csv", "accuracy.csv"
# (id, kind, damage, the reason's text — None: harmless, the job reads as if undamaged)
DAMAGE = [
    ("sweep.json is []", "sweep", meta_bytes(b"[]"), "sweep.json holds a list"),
    ("sweep.json is null", "sweep", meta_bytes(b"null"), "sweep.json holds null"),
    ("sweep.json is empty", "sweep", meta_bytes(b""), "sweep.json is not valid JSON"),
    ("sweep.json is binary", "sweep", meta_bytes(b"\x89PNG\x00\xff\xfe"),
     "sweep.json is not a text file"),
    ("sweep.json is not UTF-8", "sweep", meta_bytes('{"seed": "café"}'.encode("latin-1")),
     "sweep.json is not a text file"),
    ("created is a number", "sweep", set_meta(created=123), "created is a number, not text"),
    ("status is unknown", "sweep", set_meta(status="exploded"), "unknown status 'exploded'"),
    ("folds is text", "sweep", set_meta(folds="5"), "folds must be an integer in [2, 100]"),
    ("grids is a list", "sweep", set_meta(grids=[1, 2]), "grids must map"),
    ("a grid is text", "sweep", set_meta(grids={"sgd": "lr"}), "grids must map"),
    ("epochs is -1", "sweep", set_meta(epochs=-1), "epochs must be an integer in [1, 1,000,000]"),
    ("activations is text", "sweep", set_meta(activations="tanh"), "activations must be a list"),
    ("an unknown activation", "sweep", set_meta(activations=["gelu"]), "Invalid activation"),
    ("sweep.json missing, CSV present", "sweep", remove_meta, "sweep.json is missing"),
    ("sweep.json is a folder", "sweep", to_folder("sweep.json"), "sweep.json is a folder"),
    ("no seed column", "sweep", drop_column(SWEEP_CSV, "seed"), "column seed is missing"),
    ("no mean_score column", "sweep", drop_column(SWEEP_CSV, "mean_score"),
     "column mean_score is missing"),
    ("no diverged column", "sweep", drop_column(SWEEP_CSV, "diverged"),
     "column diverged is missing"),
    ("lr is abc", "sweep", set_value(SWEEP_CSV, "lr", "abc"),
     "tanh-sgd.csv line 2: lr='abc' is not a number"),
    ("batch_size is 0", "sweep", set_value(SWEEP_CSV, "batch_size", "0"),
     "tanh-sgd.csv line 2: Invalid batch size"),
    ("mean_score is inf", "sweep", set_value(SWEEP_CSV, "mean_score", "inf"),
     "mean_score='inf' is not empty or a number from 0 to 1"),
    ("diverged is maybe", "sweep", set_value(SWEEP_CSV, "diverged", "maybe"),
     "diverged='maybe' is not true or false"),
    ("a row of another pair", "sweep", set_value(SWEEP_CSV, "activation", "relu"),
     "not of tanh-sgd"),
    ("a row with extra values", "sweep", file_bytes(SWEEP_CSV, b"1,2,3\n", append=True),
     "3 values under"),
    ("CSV is a folder", "sweep", to_folder(SWEEP_CSV), "tanh-sgd.csv is a folder"),
    ("CSV is binary", "sweep", file_bytes(SWEEP_CSV, b"\x00\x01\xff garbage\n"),
     "tanh-sgd.csv is not a text file"),
    ("CSV is empty", "sweep", file_bytes(SWEEP_CSV, b""), None),
    ("a torn last line", "sweep", file_bytes(SWEEP_CSV, b"tanh,sgd,0.0", append=True), None),
    ("mean_score is NaN", "sweep", set_value(SWEEP_CSV, "mean_score", "NaN"), None),
    ("a stray gelu-sgd.csv", "sweep", stray_file("gelu-sgd.csv", SWEEP_CSV), None),

    ("study.json is []", "study", meta_bytes(b"[]"), "study.json holds a list"),
    ("study.json missing, CSV present", "study", remove_meta, "study.json is missing"),
    ("runs is text", "study", set_meta(runs="2"), "runs must be an integer in [1, 1,000]"),
    ("configs is an object", "study", set_meta(configs={"a": 1}), "configs must be a list"),
    ("an unknown activation in configs", "study",
     set_meta(configs=[{"activation": "gelu", "optimizer": "sgd", "lr": 0.1}]),
     "unknown activation × optimizer pair"),
    ("a config's lr is text", "study",
     set_meta(configs=[{"activation": "tanh", "optimizer": "sgd", "lr": "fast"}]),
     "Invalid learning rate"),
    ("no test_acc column", "study", drop_column(RUNS, "test_acc"),
     "runs.csv: column test_acc is missing"),
    ("test_acc is text", "study", set_value(RUNS, "test_acc", "high"),
     "runs.csv line 2: test_acc='high' is not empty or a number from 0 to 1"),
    ("run is -1", "study", set_value(RUNS, "run", "-1"), "run='-1' is not a whole number"),
    ("a run of an unknown pair", "study", set_value(RUNS, "activation", "gelu"),
     "'gelu-sgd' is not a known pair"),
    ("runs.csv is a folder", "study", to_folder(RUNS), "runs.csv is a folder"),
    ("no train_loss column", "study", drop_column(LOSSES, "train_loss"),
     "losses.csv: column train_loss is missing"),
    ("runs.csv torn last line", "study", file_bytes(RUNS, b"tanh,sg", append=True), None),

    ("ablation.json is null", "ablation", meta_bytes(b"null"), "ablation.json holds null"),
    ("ablation knobs missing", "ablation", set_meta(knobs=None),
     "ablation.json: knobs must be a list of settings"),
    ("no test_acc in accuracy.csv", "ablation", drop_column(ACCURACY, "test_acc"),
     "accuracy.csv: column test_acc is missing"),
]
KINDS = {"sweep": sweeps.SWEEP, "study": studies.STUDY, "ablation": ablation.ABLATION}


def make_good(root: Path) -> dict[str, Path]:
    """A finished tiny sweep, study and ablation under ``root`` (each a few hundred steps)."""
    sweep = sweeps.SweepSpec(("tanh",), ("sgd",), {"sgd": {"lr": [0.1], "batch_size": [30, 60]}},
                             folds=2, epochs=1, n_train=120)
    study = studies.StudySpec({("tanh", "sgd"): {"lr": 0.1, "batch_size": 100}}, runs=2,
                              epochs=2)
    abl = ablation.AblationSpec(knobs=({}, {"loss": "sum"}), runs=1, budgets=(1,),
                                long_epochs=1, pairs=(("relu", "adam"),))
    good = {}
    for name, spec in (("sweep", sweep), ("study", study), ("ablation", abl)):
        kind = KINDS[name]
        folder = jobs.create(kind, spec, root / kind.folder / f"{GOOD}-{name}")
        assert runner.Runner(kind, folder).run().status == "finished"
        good[name] = folder
    return good


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("good")
    with pytest.MonkeyPatch.context() as patch:  # in a store of their own
        patch.setenv(jobs.RESULTS_ENV, str(root))
        return make_good(root)


def damaged_copy(good: dict[str, Path], root: Path, index: int) -> Path:
    """Damage kind ``index`` applied to a copy of the good job of its kind, under ``root``."""
    _, name, damage, _ = DAMAGE[index]
    kind = KINDS[name]
    folder = root / kind.folder / f"20000101-0000{index:02d}-bad{index:03d}"
    shutil.copytree(good[name], folder)
    damage(folder, kind.meta_name)
    return folder


@pytest.mark.parametrize("index", range(len(DAMAGE)), ids=[d[0] for d in DAMAGE])
def test_the_library_and_the_command_line_say_damaged_with_the_reason(
        good, tmp_path, monkeypatch, capsys, index):
    monkeypatch.setenv(jobs.RESULTS_ENV, str(tmp_path))
    _, name, _, reason = DAMAGE[index]
    kind = KINDS[name]
    folder = damaged_copy(good, tmp_path, index)
    [job] = jobs.list_jobs(kind)
    load = {"sweep": lambda: sweeps.load(folder),
            "study": lambda: studies.load(folder, job.spec),
            "ablation": lambda: ablation.read_accuracy(folder)}[name]
    if reason is None:  # harmless: read as if it were not there
        assert job.status == "finished" and job.error is None
        load()
        if name == "sweep" and job.done:
            assert reproduce.configs_from_sweep(folder)
        return
    if job.status == "damaged":
        assert reason in job.error and job.spec is None and not job.resumable
    else:  # only the results' files are damaged: reading them says why
        with pytest.raises(ValueError, match=reason.replace("(", r"\(")):
            load()

    command = {"sweep": ["sweep", "--activations", "tanh", "--optimizers", "sgd"],
               "study": ["reproduce", "--runs", "2", "--epochs", "2"],
               "ablation": ["ablate", "--runs", "1"]}[name]
    capsys.readouterr()
    assert main([*command, "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and reason in err
    if name == "sweep" and (folder / kind.meta_name).exists():
        # a study of a damaged sweep's optimum (without sweep.json a folder of pair files is
        # read as an old sweep of the command line's)
        assert main(["reproduce", "--settings", str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and reason in err


@pytest.fixture(scope="module")
def every_damage(good, tmp_path_factory) -> Path:
    """One results root: the good jobs and a damaged copy per damage kind."""
    root = tmp_path_factory.mktemp("every")
    for name, folder in good.items():
        shutil.copytree(folder, root / KINDS[name].folder / f"{GOOD}-{name}")
    for i in range(len(DAMAGE)):
        damaged_copy(good, root, i)
    return root


def open_page(page: str, root: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv(jobs.RESULTS_ENV, str(root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> str:
    return "\n".join(c.value for c in at.code)


def check_page(at: AppTest, name: str, selector: str, good_shows) -> None:
    """Select each damaged job of ``name`` in turn, then the good one."""
    for i, (label, kind, _, reason) in enumerate(DAMAGE):
        if kind != name:
            continue
        at.selectbox(key=selector).set_value(f"20000101-0000{i:02d}-bad{i:03d}").run()
        assert not at.exception, (label, at.exception)
        if reason is None:
            assert "damaged" not in shown(at), label
        else:
            assert "damaged: " in shown(at) and reason in shown(at), label
    at.selectbox(key=selector).set_value(f"{GOOD}-{name}").run()
    assert not at.exception and "damaged" not in shown(at)
    assert good_shows(at)


@pytest.mark.slow
def test_the_cross_validation_page_shows_each_damaged_sweep_and_the_good_one(
        every_damage, monkeypatch):
    at = open_page("pages/cross_validation.py", every_damage, monkeypatch)
    check_page(at, "sweep", "cv_sweep",
               lambda at: any(str(d.key).startswith("cv_rows_") for d in at.dataframe))


@pytest.mark.slow
def test_the_reproduce_page_shows_each_damaged_study_and_ablation_and_the_good_ones(
        every_damage, monkeypatch):
    at = open_page("pages/reproduce.py", every_damage, monkeypatch)
    check_page(at, "study", "rp_view", lambda at: len(at.get("vega_lite_chart")) >= 2)
    check_page(at, "ablation", "rp_ablation",
               lambda at: any("Best combination" in c.value for c in at.caption))
