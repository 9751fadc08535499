"""Training to a time budget (sklcifar.time_budget): the plan, the schedule, the estimator.

Timing assertions are generous: CI shares two cores with other work, and the speed of
budgeted training is for benchmarks/time_to_accuracy.py to measure.
"""

import time

import keras
import numpy as np
import pytest

from sklcifar import ConvNetClassifier, FastNetClassifier, time_budget
from sklcifar.time_budget import LearningRatePlan, TimeBudget, TimeBudgetWarning


class RecordLearningRate(keras.callbacks.Callback):
    """The learning rate each training step runs with (read after TimeBudget sets it)."""

    def __init__(self):
        super().__init__()
        self.rates: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(320, 16, 16), dtype=np.uint8)
    return X, np.repeat([0, 1], 160)


def test_plan_warms_up_then_decays_to_zero_at_the_last_step():
    plan = LearningRatePlan(0.4, warmup_steps=10, total_steps=110)
    rates = np.array([plan(step) for step in range(111)])
    assert rates[0] == pytest.approx(0.04) and rates.max() == pytest.approx(0.4)
    assert np.all(np.diff(rates[:11]) > 0) and np.all(np.diff(rates[10:]) < 0)
    assert rates[110] == 0.0 and plan(500) == 0.0


@pytest.mark.parametrize("step, total", [(5, 50), (5, 300), (40, 60), (40, 400)])
def test_replanning_keeps_the_rate_continuous_and_ends_at_zero(step, total):
    plan = LearningRatePlan(1.0, warmup_steps=10, total_steps=100)
    before = plan(step)
    plan.replan(step, total, warmup_steps=total // 10)
    assert plan(step) == pytest.approx(before)
    assert plan(total) == 0.0 and plan(total - 1) > 0.0
    if step >= total // 10:  # past the warm-up: a straight line down
        assert plan(total - 1) == pytest.approx(before / (total - step))


def test_budget_plans_epochs_and_the_schedule_ends_at_zero(images):
    X, y = images
    record = RecordLearningRate()
    budget = 25.0
    start = time.perf_counter()
    clf = FastNetClassifier(
        width=4, batch_size=32, time_budget=budget, random_state=0, callbacks=[record]
    ).fit(X, y)
    seconds = time.perf_counter() - start
    steps_per_epoch = int(np.ceil(0.9 * len(X) / 32))
    assert clf.epochs_ == len(clf.history_["loss"]) >= 1
    # Whole epochs, the last one possibly cut short by the plan.
    assert (clf.epochs_ - 1) * steps_per_epoch < len(record.rates) <= clf.epochs_ * steps_per_epoch
    # Linear decay to zero: the last step's rate is one step's worth of the decline.
    # Decaying at the end (the callback test checks the exact shape on a steady clock).
    assert 0 < record.rates[-1] < record.rates[-2]
    assert max(record.rates) <= clf._setting("learning_rate") * (1 + 1e-6)
    # Generous: the planner keeps to the budget within its measurement noise.
    assert seconds < budget * 1.5 + 5


def test_budget_too_short_for_one_epoch_warns_and_trains_part_of_one(images):
    X, y = images
    record = RecordLearningRate()
    with pytest.warns(TimeBudgetWarning, match="time_budget=0.01 s is too short"):
        clf = FastNetClassifier(
            width=4, batch_size=8, time_budget=0.01, random_state=0, callbacks=[record]
        )
        clf.fit(X, y)
    # The probe steps and the least a plan runs; then Keras validates the partial epoch.
    assert len(record.rates) == time_budget.PROBE_STEPS + 1 + time_budget.MIN_PARTIAL_STEPS
    assert len(record.rates) < 36  # of the 36 steps in an epoch of 288 images
    assert clf.epochs_ == 1 and len(clf.history_["val_loss"]) == 1
    assert clf.predict(X[:3]).shape == (3,)


def test_budget_with_a_constant_rate_and_early_stopping_and_an_epoch_cap(images):
    X, y = images
    record = RecordLearningRate()
    clf = ConvNetClassifier(
        depth=1,
        filters=4,
        dense=(8,),
        epochs=3,  # caps the plan
        patience=1,
        time_budget=60,
        random_state=0,
        callbacks=[record],
    ).fit(X, y)
    assert 1 <= clf.epochs_ <= 3
    np.testing.assert_allclose(record.rates, 1e-3)  # the seed recipe's constant Adam rate


def test_time_budget_is_validated():
    with pytest.raises(ValueError, match="time_budget"):
        FastNetClassifier(time_budget=0).fit(np.zeros((4, 8, 8)), [0, 1, 0, 1])


class FakeClock:
    """time.perf_counter for sklcifar.time_budget: ``tick`` seconds more at every reading."""

    def __init__(self, tick: float = 0.01):
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


def fit_on_clock(clock, seconds, *, steps_per_epoch, epochs, step_cost=None, validation=0):
    """Fit a one-weight model, a step per sample, under a ``TimeBudget`` read from
    ``clock`` (the warm-up and decay of the fast recipe); ``step_cost`` advances the clock
    after the budget's reading at each step's start (and each validation batch's, a sample
    each, with ``validation`` samples). Returns (budget, record, history)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    budget = TimeBudget(
        seconds,
        started=clock.perf_counter(),
        steps_per_epoch=steps_per_epoch,
        validation_share=validation / steps_per_epoch,
        schedule="warmup_linear",
        peak_learning_rate=0.1,
        initial_epochs=16,
        warmup_share=0.125,
    )
    record = RecordLearningRate()
    history = model.fit(
        np.zeros((steps_per_epoch, 1)),
        np.zeros(steps_per_epoch),
        batch_size=1,
        epochs=epochs,
        validation_data=(np.zeros((validation, 1)), np.zeros(validation)) if validation else None,
        verbose=0,
        callbacks=[budget, *([step_cost] if step_cost else []), record],
    )
    return budget, record, history


# On this clock 2 s fill whole epochs; 1.25 s leave room for 8 steps of a fourth epoch.
@pytest.mark.parametrize("seconds, partial_epoch", [(2.0, False), (1.25, True)])
def test_callback_plans_from_its_clock_and_decays_to_zero_at_the_end(
    monkeypatch, seconds, partial_epoch
):
    clock = FakeClock()
    monkeypatch.setattr(time_budget, "time", clock)
    budget, record, history = fit_on_clock(clock, seconds, steps_per_epoch=10, epochs=1000)
    # Each step reads the clock three times and each epoch end twice: ~0.32 s per epoch.
    assert budget.plans[-1][1] == budget.planned_steps == len(record.rates)
    assert len(history.epoch) == budget.planned_epochs == -(-budget.planned_steps // 10)
    assert (budget.planned_steps % 10 != 0) == partial_epoch  # stopped mid-epoch
    assert seconds / 0.5 <= budget.planned_epochs <= seconds / 0.2
    assert clock.now <= seconds
    rates = np.array(record.rates)
    assert rates.max() <= 0.1 + 1e-7 and rates[-1] > 0
    assert rates[-1] == pytest.approx(rates[-2] - rates[-1], rel=1e-4)  # next step: zero


class StepCost(keras.callbacks.Callback):
    """Advances a FakeClock by each training step's cost: ``slow`` seconds for the first
    ``slow_steps`` steps, then ``fast`` (a data pipeline warming up); and by each
    validation batch's, ``validation`` seconds (the first one ``validation_first``)."""

    def __init__(self, clock, slow, fast, slow_steps, validation=0.0, validation_first=0.0):
        super().__init__()
        self.clock, self.slow, self.fast, self.slow_steps = clock, slow, fast, slow_steps
        self.validation, self.validation_first = validation, validation_first
        self.steps = self.validation_batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.clock.now += self.slow if self.steps < self.slow_steps else self.fast
        self.steps += 1

    def on_test_batch_begin(self, batch, logs=None):
        first = self.validation_batches == 0
        self.clock.now += self.validation_first if first else self.validation
        self.validation_batches += 1


def test_callback_lengthens_its_plan_within_an_epoch_when_the_first_steps_ran_slow(
    monkeypatch,
):
    # Planned from the first steps alone, at twice the later steps' cost, the budget would
    # end after about 45 of the 65 or so steps that fit; within one epoch there is no
    # epoch end to re-plan at.
    clock = FakeClock(tick=0.0001)
    monkeypatch.setattr(time_budget, "time", clock)
    cost = StepCost(clock, slow=0.02, fast=0.01, slow_steps=8)
    budget, record, _ = fit_on_clock(clock, 1.0, steps_per_epoch=200, epochs=1, step_cost=cost)
    first_plan = budget.plans[0][1]
    assert budget.planned_steps > first_plan + 10
    assert budget.planned_steps == len(record.rates) < 200
    # Within two steps of the budget's margin (a tolerance of 4 steps left up to 4 unused).
    assert 1.0 - time_budget.MARGIN - 2 * 0.0104 <= clock.now <= 1.0
    rates = np.array(record.rates)
    assert rates[-1] == pytest.approx(rates[-2] - rates[-1], rel=1e-4)  # next step: zero


def test_budget_within_one_epoch_leaves_its_validation_pass_the_time_of_forward_passes(
    monkeypatch,
):
    # Steps of 10 ms after a first one of 100 ms (tracing); 40 validation samples at a
    # forward pass each, a third of a step, the first 30 ms more (the evaluation graph's
    # tracing): the pass takes 0.16 s. Planned at half a step per sample, as before, it
    # took 0.23 s and the fit ended near 0.87 s of its 1 s.
    clock = FakeClock(tick=0.0001)
    monkeypatch.setattr(time_budget, "time", clock)
    cost = StepCost(clock, 0.1, 0.01, 1, validation=0.01 / 3, validation_first=0.01 / 3 + 0.03)
    budget, record, history = fit_on_clock(
        clock, 1.0, steps_per_epoch=200, epochs=1, step_cost=cost, validation=40
    )
    assert cost.validation_batches == 40 and len(history.history["val_loss"]) == 1
    assert budget.planned_steps == len(record.rates) < 200
    assert 1.0 - time_budget.MARGIN - 0.03 <= clock.now <= 1.0


def test_plan_a_step_or_two_short_of_the_budget_is_lengthened(monkeypatch):
    # The first steps run 4% slower than the rest: the first plan falls two steps short of
    # what fits. A tolerance of four steps kept it, and the fit ended 2 steps early.
    clock = FakeClock(tick=0.0001)
    monkeypatch.setattr(time_budget, "time", clock)
    cost = StepCost(clock, slow=0.0104, fast=0.01, slow_steps=8)
    budget, record, _ = fit_on_clock(clock, 1.0, steps_per_epoch=200, epochs=1, step_cost=cost)
    assert budget.plans[0][1] < budget.planned_steps == len(record.rates)
    assert 1.0 - time_budget.MARGIN - 0.0104 <= clock.now <= 1.0


# ------------------------------------------------------------- the width a budget pays for
def timed(epoch_seconds: dict[int, float], calls: list[int]):
    """A ``time_width`` for ``choose_width`` with set epoch times, recording its calls."""

    def time_width(width):
        calls.append(width)
        return 0.0, epoch_seconds[width]

    return time_width


@pytest.mark.parametrize(
    "seconds, max_epochs, chosen, timed_widths",
    [
        (900, None, 32, [16, 32]),  # 32 gets 15 epochs
        (600, None, 16, [16, 32]),  # 32 would get 10, under 12
        (300, None, 16, [16]),  # 16 gets 15: 32 cannot reach 12 at twice 16's time
        (900, 10, 16, [16]),  # the user's cap of 10 epochs: 32 cannot reach 12, not timed
    ],
)
def test_choose_width_takes_the_widest_the_budget_gives_enough_epochs(
    seconds, max_epochs, chosen, timed_widths
):
    calls = []
    time_width = timed({16: 20.0, 32: 60.0}, calls)
    width, epochs = time_budget.choose_width(
        [32, 16], time_width, time.perf_counter() + seconds, min_epochs=12, max_epochs=max_epochs
    )
    assert width == chosen and calls == timed_widths
    assert list(epochs) == timed_widths
    cap = max_epochs or np.inf
    assert epochs[16] == pytest.approx(min(seconds / 20, cap), rel=0.01)


class SleepyModel:
    """``train_on_batch`` that sleeps and records its labels and whether memory was held."""

    def __init__(self, seconds: float, allocator_calls: list[str]):
        self.seconds, self.allocator_calls = seconds, allocator_calls
        self.labels: list[list[int]] = []
        self.held: list[bool] = []

    def train_on_batch(self, X, y):
        self.labels.append(list(y))
        self.held.append(self.allocator_calls[-1:] == ["hold"])
        time.sleep(self.seconds)


def test_training_step_seconds_times_its_steps_with_memory_held(monkeypatch):
    calls = []
    monkeypatch.setattr(time_budget.allocator, "hold", lambda: calls.append("hold"))
    monkeypatch.setattr(time_budget.allocator, "release", lambda: calls.append("release"))
    model = SleepyModel(0.01, calls)
    X, y = np.zeros((5, 4, 4, 1)), np.arange(5)
    first, step = time_budget.training_step_seconds(model, X, y, batch_size=2, steps=3)
    # The first step (tracing), then 3 timed ones.
    assert len(model.labels) == 4 and step >= 0.01 and first >= 0.01
    # Batches go through the images in order, from the start again when they run out.
    assert model.labels == [[0, 1], [2, 3], [4, 0], [1, 2]]
    assert all(model.held) and calls == ["hold", "release"]


def test_choose_width_stops_timing_at_the_first_width_short_of_its_epochs():
    calls = []
    time_width = timed({8: 10.0, 16: 60.0, 32: 100.0}, calls)
    # 8 gets 60 epochs in 600 s, 16 only 10: 32, slower still, is not timed.
    width, _ = time_budget.choose_width(
        [8, 16, 32], time_width, time.perf_counter() + 600, min_epochs=12
    )
    assert width == 8 and calls == [8, 16]


def test_choose_width_leaves_the_startup_of_the_network_out_of_its_epochs():
    # 600 s: 32 would get 12 epochs of 50 s, but its building and first step take 60.
    width, epochs = time_budget.choose_width(
        [16, 32],
        lambda width: (60.0, {16: 10.0, 32: 50.0}[width]),
        time.perf_counter() + 600,
        min_epochs=12,
    )
    assert width == 16 and epochs[32] == pytest.approx(10.8, rel=0.01)


@pytest.fixture(scope="module")
def real_gray_images(cifar10_train):
    from sklcifar.datasets import stratified_subset
    from sklcifar.transformers import Grayscale

    X, y = stratified_subset(cifar10_train.images, cifar10_train.target, 320, random_state=0)
    return Grayscale().transform(X), y


def network_width(clf) -> int:
    """The width the network was built with: its last stage has 8x its filters."""
    return max(getattr(layer, "filters", 0) for layer in clf.model_.layers) // 8


def test_auto_width_without_a_budget_is_16(real_gray_images):
    X, y = real_gray_images
    clf = FastNetClassifier(epochs=1, batch_size=64, random_state=0).fit(X, y)
    assert clf.get_params()["width"] == "auto"
    assert clf.width_ == 16 and clf.width_epochs_ == {}
    assert network_width(clf) == 16


@pytest.mark.parametrize("min_epochs, chosen", [(1e-3, 8), (1e9, 4)])
def test_auto_width_with_a_budget_times_the_widths_and_builds_the_chosen_one(
    real_gray_images, monkeypatch, min_epochs, chosen
):
    from sklcifar import estimators

    X, y = real_gray_images
    monkeypatch.setattr(estimators, "AUTO_WIDTHS", (4, 8))
    monkeypatch.setattr(time_budget, "WIDER_NETWORK_MIN_EPOCHS", min_epochs)
    clf = FastNetClassifier(epochs=1, batch_size=32, time_budget=60, random_state=0).fit(X, y)
    assert clf.width_ == chosen and network_width(clf) == chosen
    # Width 8 is timed only when width 4's epochs leave it a chance.
    assert sorted(clf.width_epochs_) == ([4, 8] if chosen == 8 else [4])
    assert all(epochs > 0 for epochs in clf.width_epochs_.values())


def test_timing_the_widths_leaves_the_fit_as_with_the_chosen_width_given(
    real_gray_images, monkeypatch
):
    from sklcifar import estimators

    X, y = real_gray_images
    monkeypatch.setattr(estimators, "AUTO_WIDTHS", (4, 8))
    monkeypatch.setattr(time_budget, "WIDER_NETWORK_MIN_EPOCHS", 1e-3)
    # A generous budget and a cap of one epoch: both fits run the same planned steps.
    params = {"epochs": 1, "batch_size": 32, "time_budget": 600, "random_state": 0}
    auto = FastNetClassifier(**params).fit(X, y)
    given = FastNetClassifier(width=8, **params).fit(X, y)
    assert auto.width_ == given.width_ == 8
    np.testing.assert_allclose(auto.predict_proba(X[:20]), given.predict_proba(X[:20]))


@pytest.mark.parametrize("width", ["wide", 0, 2.5])
def test_width_other_than_a_positive_int_or_auto_is_refused(width):
    with pytest.raises(ValueError, match="width"):
        FastNetClassifier(width=width).fit(np.zeros((4, 8, 8), np.uint8), [0, 1, 0, 1])
