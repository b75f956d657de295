"""Two servers' lines sharing one store (replicas behind a proxy): a job is in one line at a
time and trained by one process, however the two race.  The job processes are threads here
(``Process``), so these tests take milliseconds; tests/test_job_processes.py runs real ones."""

import threading

import helpers
import pytest

from minidl import jobs
from minidl.experiments import sweeps
from minidl.jobs import scheduler

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)
SWEEP = sweeps.SWEEP


class Process:
    """A job's process as a thread: once ``go`` is set it takes the job's training lock, says
    running and ends "finished" when ``end`` is set (exit code 1 if another holds the job)."""

    def __init__(self, folder):
        self.job = jobs.find(folder)
        self.go, self.training, self.end = threading.Event(), threading.Event(), threading.Event()
        self.returncode = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.go.wait()
        try:
            with self.job.store.lock(self.job.id):
                jobs.set_status(self.job, "running")
                self.training.set()
                self.end.wait()
                jobs.set_status(self.job, "finished")
            self.returncode = 0
        except jobs.Busy:
            self.returncode = 1

    def poll(self):
        return self.returncode

    def send_signal(self, _signal) -> None:
        self.end.set()

    def wait(self):
        self.go.set()
        self.thread.join()
        return self.returncode


@pytest.fixture
def processes(monkeypatch):
    """The job processes the schedulers start, by job id (threads, see ``Process``)."""
    started: dict[str, Process] = {}

    def spawn(kind, folder, *_args):
        process = started[jobs.find(folder).id] = Process(folder)
        return process
    monkeypatch.setattr(scheduler, "_spawn", spawn)
    return started


@pytest.fixture
def lines():
    """Two servers' lines (one job at a time, three waiting) on the one store."""
    made = [scheduler.Scheduler(running=1, waiting=3, poll=0.01) for _ in range(2)]
    yield made
    for line in made:
        line.shutdown()


def new_sweep():
    spec = sweeps.SweepSpec(("tanh",), ("sgd",), {"sgd": {"lr": [0.1], "batch_size": [50]}},
                            folds=2, epochs=1, n_train=100)
    return jobs.create(SWEEP, spec)


def test_a_job_waiting_in_one_servers_line_is_refused_by_another(lines, processes):
    a, b = lines
    first, second = new_sweep(), new_sweep()
    a.submit(SWEEP, first)
    waiting = a.submit(SWEEP, second)
    assert waiting.position == 1
    with pytest.raises(jobs.Busy, match="waiting in another server's line"):
        b.submit(SWEEP, second)
    assert jobs.info(SWEEP, second).status == "queued"  # listed as waiting, not interrupted
    assert not b.active()


def test_a_job_stays_claimed_while_its_process_starts_and_is_then_trained_once(lines, processes):
    a, b = lines
    folder = new_sweep()
    job = a.submit(SWEEP, folder)
    helpers.wait_until(lambda: jobs.find(folder).id in processes)
    process = processes[jobs.find(folder).id]
    store, id = process.job.store, process.job.id
    # the process is starting (importing torch…): it holds nothing yet, the line does
    assert store.locked(id, "waiting") and not store.locked(id)
    with pytest.raises(jobs.Busy, match="another server's line"):
        b.submit(SWEEP, folder)
    process.go.set()
    helpers.wait_until(lambda: not store.locked(id, "waiting"))  # handed over…
    assert store.locked(id)  # …once the process holds it
    with pytest.raises(jobs.Busy, match="being trained by another process"):
        b.submit(SWEEP, folder)
    process.end.set()
    helpers.wait_until(lambda: not job.active)
    assert job.status == "finished" and not store.claimed(id)
    assert b.submit(SWEEP, folder).active  # stopped: any server may run it again


def test_a_job_another_process_took_first_keeps_the_status_that_process_writes(
        lines, processes):
    a, _ = lines
    blocker, folder = new_sweep(), new_sweep()
    a.submit(SWEEP, blocker)
    job = a.submit(SWEEP, folder)  # waits behind the blocker
    with jobs.lock(folder):  # as `minidl sweep --out FOLDER` does while the job waits
        jobs.set_status(jobs.find(folder), "running")
        first = processes[jobs.find(blocker).id]
        first.go.set()
        first.end.set()  # the blocker ends: the line starts ours…
        helpers.wait_until(lambda: jobs.find(folder).id in processes)
        processes[jobs.find(folder).id].go.set()  # …whose process is refused
        helpers.wait_until(lambda: not job.active)
        assert jobs.info(SWEEP, folder).status == "running"  # not "failed": it trains
    assert not jobs.find(folder).store.claimed(jobs.find(folder).id)


def test_a_cancelled_waiting_job_is_free_for_any_server(lines, processes):
    a, b = lines
    a.submit(SWEEP, new_sweep())
    folder = new_sweep()
    a.submit(SWEEP, folder).cancel()
    assert jobs.info(SWEEP, folder).status == "cancelled"
    assert b.submit(SWEEP, folder).active
