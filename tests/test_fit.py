"""minidl.engine.fit: many members to the end in memory-bounded populations, pausable and
resumable; a population's members match the same members trained alone."""

import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minidl import data
from minidl.engine import fit as pop
from minidl.experiments import cv


def paired(members: list, activation: str, optimizer: str) -> list:
    """``members`` training ``activation`` with ``optimizer``."""
    return [pop.Member({**m.settings, "activation": activation, "optimizer": optimizer},
                       m.train_rows, m.eval_rows, m.seed) for m in members]


@pytest.fixture(scope="module")
def disk():
    return data.disk(300, seed=0)


def test_population_members_match_their_sequential_twins_exactly(disk):
    """Same seed → same initial weights and minibatch order → (nearly) the same final model."""
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    members = [pop.Member(cv.complete({"lr": lr, "batch_size": 7}), train, val, seed=f)
               for lr in (0.01, 0.1) for f, (train, val) in enumerate(splits)]
    a = pop.fit(X, y, paired(members, "relu", "adam"), cv.SIZES, 3, history=True)
    b = pop.fit(X, y, paired(members, "relu", "adam"), cv.SIZES, 3, max_population=1, history=True)
    for ra, rb in zip(a, b):
        assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-4)
        assert ra.train_loss_history == pytest.approx(rb.train_loss_history, rel=1e-4)


def test_one_cost_function_counts_optimizer_steps():
    assert pop.steps(1000, 1, 2) == 2000 and pop.steps(1000, 30, 1) == 34
    member = pop.Member(cv.complete({"batch_size": 7}), torch.arange(20), torch.arange(5), 0)
    assert pop.work_units(member, 3) == pop.steps(20, 7, 3) == 9


def test_weight_decay_is_applied_per_member_in_a_population(disk):
    """A population with λ per member trains each member as its own twin would."""
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    members = [pop.Member(cv.complete({"lr": 0.05, "batch_size": 10, "weight_decay": wd}),
                          train, val, seed=f)
               for wd in (0.0, 0.1) for f, (train, val) in enumerate(splits)]
    a = pop.fit(X, y, paired(members, "tanh", "sgd"), cv.SIZES, 2)
    b = pop.fit(X, y, paired(members, "tanh", "sgd"), cv.SIZES, 2, max_population=1)
    for ra, rb in zip(a, b):
        assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-4)
    assert a[0].train_loss != pytest.approx(a[3].train_loss, rel=1e-3)


def test_checkpoints_record_the_accuracy_a_full_history_would(disk):
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    members = [pop.Member(cv.complete({"lr": 0.05, "batch_size": 20}), train, val, seed=f)
               for f, (train, val) in enumerate(splits)]
    full = pop.fit(X, y, paired(members, "tanh", "sgd"), cv.SIZES, 4, history=True)
    sparse = pop.fit(X, y, paired(members, "tanh", "sgd"), cv.SIZES, 4, checkpoints=[2, 4])
    for a, b in zip(full, sparse):
        assert b.eval_acc_at == {2: a.eval_acc_history[1], 4: a.eval_acc_history[3]}
        assert b.eval_acc_history == [] and b.eval_acc == a.eval_acc


def test_l1_is_applied_per_member_in_a_population(disk):
    """A population with λ₁ per member trains each member as its own twin would."""
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    members = [pop.Member(cv.complete({"lr": 0.01, "batch_size": 10, "l1": l1}),
                          train, val, seed=f)
               for l1 in (0.0, 0.01) for f, (train, val) in enumerate(splits)]
    for optimizer in ("sgd", "adam"):
        a = pop.fit(X, y, paired(members, "tanh", optimizer), cv.SIZES, 2)
        b = pop.fit(X, y, paired(members, "tanh", optimizer), cv.SIZES, 2, max_population=1)
        for ra, rb in zip(a, b):
            assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-4)
        assert a[0].train_loss != pytest.approx(a[3].train_loss, rel=1e-3)


def test_a_population_sees_the_features_a_run_would(disk):
    """With input features, batched members match their sequential twins, and the features
    change what is learnt; sizes must take as many inputs as there are features."""
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    features = ("x1", "x1sq", "x2sq", "sinx2")
    members = [pop.Member(cv.complete({"lr": 0.01, "batch_size": 10, "inputs": inputs}),
                          train, val, seed=f)
               for inputs in ("raw", "standardised") for f, (train, val) in enumerate(splits)]
    sizes = [len(features), *cv.SIZES[1:]]
    a = pop.fit(X, y, paired(members, "tanh", "adam"), sizes, 2, features=features)
    b = pop.fit(X, y, paired(members, "tanh", "adam"), sizes, 2, max_population=1, features=features)
    for ra, rb in zip(a, b):
        assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-4)
    plain = pop.fit(X, y, paired(members, "tanh", "adam"), cv.SIZES, 2)
    assert a[0].train_loss != pytest.approx(plain[0].train_loss, rel=1e-3)
    with pytest.raises(ValueError, match="cannot take 4 features"):
        pop.fit(X, y, paired(members, "tanh", "adam"), cv.SIZES, 2, features=features)


# ---------------------------------------------------------------- pause and resume

def _fit_in_pauses(fit, *, through_disk=None):
    """Call ``fit(resume, pause_after=0)`` until it returns, feeding each ``Paused`` state back
    (through ``torch.save`` / ``torch.load(weights_only=True)`` when ``through_disk`` is a
    path, as a job's checkpoint goes); returns (results, pauses, steps reported as done)."""
    state, pauses, done = None, 0, 0
    while True:
        try:
            return fit(state, 0.0), pauses, done
        except pop.Paused as paused:
            pauses, done = pauses + 1, done + paused.done
            state = paused.state
            if through_disk is not None:
                torch.save(state, through_disk)
                state = torch.load(through_disk, weights_only=True)


@pytest.mark.parametrize("optimizer, batched", [("sgd", True), ("adam", True),
                                                ("rmsprop", True), ("adam", False)])
def test_a_fit_paused_every_epoch_ends_exactly_where_one_that_never_stopped_does(
        disk, optimizer, batched, tmp_path):
    X, y = disk
    splits = cv.kfold(len(y), 2, seed=0)
    # two batch sizes: two populations, so a pause also falls between populations; SGD at a
    # huge learning rate diverges mid-way (its member is frozen, and must stay frozen)
    grid = [{"lr": 0.05, "momentum": 0.9, "batch_size": 25}, {"lr": 0.2, "batch_size": 25},
            {"lr": 0.05, "batch_size": 50}, {"lr": 50.0, "batch_size": 25}]
    members = [pop.Member(cv.complete(c), train, val, seed=f)
               for c in grid for f, (train, val) in enumerate(splits)]

    def fit(resume=None, pause_after=None):
        return pop.fit(X, y, paired(members, "relu", optimizer), cv.SIZES, 4,
                       max_population=None if batched else 1, history=True, checkpoints=[2, 3], resume=resume,
                       pause_after=pause_after)
    whole = fit()
    paused, pauses, done = _fit_in_pauses(fit, through_disk=tmp_path / "state.pt")
    assert pauses >= 6  # every epoch but each population's last
    if optimizer == "sgd":  # (Adam's and RMSProp's steps are bounded by the lr: no NaN)
        assert any(r.diverged for r in whole) and not all(r.diverged for r in whole)
    for a, b in zip(whole, paused):  # repr: exact floats, and nan equal to nan
        assert repr((a.diverged, a.eval_acc, a.train_loss, a.train_loss_history,
                     a.eval_acc_history, a.eval_acc_at)) == \
            repr((b.diverged, b.eval_acc, b.train_loss, b.train_loss_history,
                  b.eval_acc_history, b.eval_acc_at))
    # the paused calls reported the steps they trained: with the last call's, all of them
    assert done < sum(pop.work_units(m, 4) for m in members)


def test_a_cancelled_fit_keeps_its_state_and_progress_counts_only_the_rest(disk):
    X, y = disk
    splits = cv.kfold(len(y), 2, seed=1)
    members = [pop.Member(cv.complete({"lr": lr, "batch_size": 20}), train, val, seed=f)
               for lr in (0.01, 0.1) for f, (train, val) in enumerate(splits)]
    per_epoch = sum(pop.work_units(m, 1) for m in members)
    whole = pop.fit(X, y, paired(members, "tanh", "rmsprop"), cv.SIZES, 5)
    with pytest.raises(pop.Cancelled) as stopped:
        pop.fit(X, y, paired(members, "tanh", "rmsprop"), cv.SIZES, 5,
                progress=lambda done, total: done < 2 * per_epoch)
    assert stopped.value.done == 2 * per_epoch and stopped.value.state is not None
    seen = []
    resumed = pop.fit(X, y, paired(members, "tanh", "rmsprop"), cv.SIZES, 5,
                      resume=stopped.value.state, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (3 * per_epoch, 3 * per_epoch)  # only the three epochs left
    assert [r.eval_acc for r in resumed] == [r.eval_acc for r in whole]


def test_a_checkpoint_resumes_only_the_fit_it_came_from(disk):
    X, y = disk
    splits = cv.kfold(len(y), 2, seed=0)
    members = [pop.Member(cv.complete({"lr": 0.1, "batch_size": 50}), train, val, seed=f)
               for f, (train, val) in enumerate(splits)]
    with pytest.raises(pop.Paused) as paused:
        pop.fit(X, y, paired(members, "tanh", "sgd"), cv.SIZES, 3, pause_after=0.0)
    other = [pop.Member(m.settings, m.train_rows, m.eval_rows, m.seed + 1) for m in members]
    for args in [(other, "tanh", "sgd", 3), (members, "relu", "sgd", 3),
                 (members, "tanh", "sgd", 4)]:
        with pytest.raises(ValueError, match="another fit"):
            pop.fit(X, y, paired(*args[:3]), cv.SIZES, args[3], resume=paused.value.state)


# an 8 MB block allocated, written and freed again and again, as a population's biggest
# tensors are at every step (the workload-level effect: benchmarks/freed_memory.py, whose
# fault counts vary too much from run to run to be asserted)
REUSE = """
import ctypes, resource, sys
from minidl import runtime
if sys.argv[1] == "on":
    runtime.keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 8 << 20
def block():
    p = libc.malloc(SIZE)
    ctypes.memset(p, 1, SIZE)
    libc.free(p)
block()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    block()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.slow
def test_kept_freed_memory_is_reused_without_faulting_its_pages_in_again():
    if platform.libc_ver()[0] != "glibc":  # (asked without tuning this test process)
        pytest.skip("the C library is not glibc: mallopt is not there to tune")

    def faults(setting: str) -> int:
        out = subprocess.run([sys.executable, "-c", REUSE, setting],
                             cwd=Path(__file__).resolve().parent.parent,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return int(out.stdout.split()[-1])

    pages = (8 << 20) // 4096
    off, on = faults("off"), faults("on")
    assert off >= pages // 2, off  # glibc's defaults: the block's pages faulted in again
    assert on < pages // 20, on    # kept: the same pages reused
