"""Several search workers on one study in a real PostgreSQL server.

The server's URL comes from ``SKLCIFAR_TEST_POSTGRES_URL`` (``.ci/start-postgres.sh``
starts a server and prints it). Without it these tests skip, except in CI (``CI`` set),
where a missing or unreachable server fails them.

Each worker is a ``python benchmarks/search.py`` (``sklcifar search``) process training
tiny networks on
synthetic CIFAR-10 (120 images), with a 1-second heartbeat.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from sklcifar.search import check_storage_url

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[1]
URL_VARIABLE = "SKLCIFAR_TEST_POSTGRES_URL"
# Seconds any one worker may take; a normal one needs 20-60 on 2 shared cores.
WORKER_TIMEOUT = 240
# Runs the search script given after it, but the worker hangs in the first epoch report
# it records once a trial has completed: the moment the killed-worker test needs, held
# until the test kills it (polling for it let a fast trial end between two polls). The
# heartbeat thread goes on beating meanwhile, as in a worker that is busy training.
HANG_MID_TRIAL = """
import runpy, sys, time
import optuna
from optuna.trial import TrialState

record = optuna.trial.Trial.report

def record_then_hang(self, value, step):
    record(self, value, step)
    if self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        time.sleep(3600)

optuna.trial.Trial.report = record_then_hang
del sys.argv[0]
sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0])  # as `python script.py` would
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def postgres_url() -> str:
    """The test server's URL; skip without one, but fail in CI."""
    url = os.environ.get(URL_VARIABLE)
    in_ci = bool(os.environ.get("CI"))
    if not url:
        message = f"{URL_VARIABLE} is not set; start a server with .ci/start-postgres.sh"
        if in_ci:
            pytest.fail(f"CI must run the PostgreSQL tests: {message}")
        pytest.skip(message)
    try:
        check_storage_url(url)
    except (ValueError, ConnectionError) as error:
        if in_ci:
            pytest.fail(f"CI must run the PostgreSQL tests: {error}")
        pytest.skip(str(error))
    return url


@pytest.fixture
def study_name(postgres_url):
    """A fresh study name, deleted from the server after the test."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    if name in optuna.get_all_study_names(postgres_url):
        optuna.delete_study(study_name=name, storage=postgres_url)


@pytest.fixture
def worker(postgres_url, study_name, make_cifar_archive, tmp_path):
    """Factory starting a search worker process: ``worker(seed, n_trials, *extra)``;
    ``hang=True`` runs it under ``HANG_MID_TRIAL``."""
    data = make_cifar_archive("cifar10", n_per_class_train=12, n_per_class_test=2)
    started: list[subprocess.Popen] = []

    def start(seed: int, n_trials: int, *extra: str, hang: bool = False) -> subprocess.Popen:
        script = str(REPO / "benchmarks" / "search.py")
        command = [sys.executable, *(("-c", HANG_MID_TRIAL) if hang else ()), script]
        command += ["--data", str(data), "--subset", "all", "--n-trials", str(n_trials)]
        command += ["--validation-images", "20"]
        command += ["--families", "convnet", "--param", "depth=2", "--param", "filters=4"]
        command += ["--param", "dense=[8]", "--param", "training=seed"]
        command += ["--storage", postgres_url, "--study-name", study_name]
        command += ["--seed", str(seed), "--output", str(tmp_path / f"worker{seed}")]
        command += ["--heartbeat-interval", "1", "--grace-period", "30", "--search-only"]
        command += ["--no-progress", "--timeout", str(WORKER_TIMEOUT), *extra]
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=WORKER_TIMEOUT)
    assert process.returncode == 0, output[-3000:]


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


def test_two_workers_share_one_study(postgres_url, study_name, worker):
    n_trials = 6
    first, second = worker(1, n_trials), worker(2, n_trials)
    _finish(first)
    _finish(second)

    trials = _trials(postgres_url, study_name)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == n_trials == len(trials)
    pids = {t.user_attrs["worker"].rsplit(":", 1)[1] for t in finished}
    assert pids == {str(first.pid), str(second.pid)}


def test_killed_worker_trial_is_failed_and_retried(postgres_url, study_name, worker):
    n_trials = 4
    # A short grace period, so the dead worker's trial is soon found stale; safe here as
    # no other worker runs beside the victim.
    settings = ("--epochs", "3", "--pruner", "none", "--grace-period", "3")
    victim = worker(1, n_trials, *settings, hang=True)
    # Kill it mid-trial: once a trial has completed and the next has reported an epoch
    # (so its heartbeat is recorded); the victim hangs there until killed.
    deadline = time.monotonic() + WORKER_TIMEOUT
    running = None
    while running is None:
        assert victim.poll() is None, victim.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the worker never got mid-trial"
        time.sleep(0.2)
        if study_name not in optuna.get_all_study_names(postgres_url):
            continue
        trials = _trials(postgres_url, study_name)
        if any(t.state == TrialState.COMPLETE for t in trials):
            running = next(
                (t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values),
                None,
            )
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    complete_before = {
        t.number: t.value
        for t in _trials(postgres_url, study_name)
        if t.state == TrialState.COMPLETE
    }

    _finish(worker(2, n_trials, *settings))

    trials = {t.number: t for t in _trials(postgres_url, study_name)}
    assert trials[running.number].state == TrialState.FAIL
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == running.number]
    assert len(retries) == 1
    assert retries[0].state == TrialState.COMPLETE
    assert retries[0].params == running.params
    for number, value in complete_before.items():
        assert trials[number].state == TrialState.COMPLETE and trials[number].value == value
    states = [t.state for t in trials.values()]
    assert states.count(TrialState.COMPLETE) == n_trials
    assert states.count(TrialState.FAIL) == 1 and len(states) == n_trials + 1


def test_password_from_the_environment_and_never_shown(postgres_url, monkeypatch):
    """The documented way to keep the password out of the command line: PGPASSWORD."""
    url = sqlalchemy.engine.make_url(postgres_url)
    without = sqlalchemy.engine.URL.create(
        url.drivername, url.username, None, url.host, url.port, url.database
    ).render_as_string(hide_password=False)
    assert f":{url.password}@" not in without
    monkeypatch.setenv("PGPASSWORD", url.password)
    check_storage_url(without)
    monkeypatch.setenv("PGPASSWORD", "wrong-secret")
    with pytest.raises(ConnectionError, match="cannot connect") as info:
        check_storage_url(without)
    assert "wrong-secret" not in str(info.value)
