"""glibc's malloc thresholds while a network trains (sklcifar.allocator)."""

import numpy as np
import pytest

from sklcifar import FastNetClassifier, allocator


@pytest.fixture
def mallopt_calls(monkeypatch):
    """The (parameter, value) of each mallopt call, and "trim" for each malloc_trim."""
    calls = []

    def mallopt(parameter, value):
        calls.append((parameter, value))
        return 1

    def malloc_trim(pad):
        calls.append("trim")
        return 1

    monkeypatch.setattr(allocator, "_glibc", lambda: (mallopt, malloc_trim))
    return calls


HOLD = [
    (allocator.M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD),
    (allocator.M_TRIM_THRESHOLD, allocator.HELD_TRIM_THRESHOLD),
]
RELEASE = [(allocator.M_TRIM_THRESHOLD, allocator.TENSORFLOW_TRIM_THRESHOLD), "trim"]


def test_fit_holds_memory_after_each_epochs_first_step_and_releases_it_at_the_end(
    mallopt_calls,
):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(64, 8, 8), dtype=np.uint8)
    y = np.repeat([0, 1], 32)
    # Two epochs: held at the start, after each epoch's first step (TensorFlow sets its
    # own trim threshold when the batches' first iterator starts), released at the end.
    FastNetClassifier(width=2, epochs=2, batch_size=16, random_state=0).fit(X, y)
    assert mallopt_calls == HOLD * 3 + RELEASE


def test_hold_and_release_call_glibc_where_the_process_has_it():
    if allocator._glibc() is None:
        pytest.skip("no glibc in this process")
    mallopt, _ = allocator._glibc()
    assert mallopt(allocator.M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD) == 1
    allocator.hold()
    allocator.release()


def test_without_glibc_nothing_is_called(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    allocator.hold()
    allocator.release()
