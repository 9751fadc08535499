"""glibc's malloc while a network trains: memory kept for the next step.

TensorFlow's ``GeneratorDataset`` (behind every ``keras.utils.PyDataset``, so behind the
package's augmented batches) calls ``mallopt(M_TRIM_THRESHOLD, 128 KiB)`` when its first
iterator starts, once per process ("Memory patch applied" in its log). Setting any
threshold also freezes glibc's mmap threshold at its 128-KiB start value, so from then on
every activation tensor larger than that is mapped fresh and unmapped at each step, and
its pages fault in again: on a 2-core AMD EPYC (AVX2) 40% of the training process's CPU time
went to the kernel, and epochs ran 1.8x slower than with the memory kept
(``benchmarks/RESULTS.md``, "The allocator"). While a network trains, the package
therefore serves allocations below ``MMAP_THRESHOLD`` from the heap and keeps up
to ``HELD_TRIM_THRESHOLD`` of freed memory for the next step; afterwards it puts
TensorFlow's trim threshold back and returns the free memory to the system.

Without glibc (macOS, musl, Windows) nothing changes.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

import keras

__all__ = ["HeldMemory", "hold", "release"]

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# glibc's largest mmap threshold on 64-bit systems: larger blocks (whole datasets) are
# still mapped and returned as soon as they are freed.
MMAP_THRESHOLD = 32 * 1024 * 1024
# More than a training step's tensors (about 700 MB a step for the default network at
# batch 256, counted as page faults), so that nothing is returned between steps.
HELD_TRIM_THRESHOLD = 2 * 1024**3
# TensorFlow's value (generator_dataset_op.cc), restored when training ends.
TENSORFLOW_TRIM_THRESHOLD = 128 * 1024


@functools.cache
def _glibc() -> tuple[Callable, Callable] | None:
    """(mallopt, malloc_trim) of the process's glibc, or None without glibc."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # no C library to load by that name (Windows)
        return None
    # musl and macOS have no gnu_get_libc_version (musl's mallopt does nothing anyway).
    if not hasattr(libc, "gnu_get_libc_version"):
        return None
    return libc.mallopt, libc.malloc_trim


def hold() -> None:
    """Keep freed memory for reuse: allocations below 32 MiB from the heap, no trimming."""
    functions = _glibc()
    if functions is not None:
        mallopt, _ = functions
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        mallopt(M_TRIM_THRESHOLD, HELD_TRIM_THRESHOLD)


def release() -> None:
    """TensorFlow's trim threshold again, and the free heap memory back to the system."""
    functions = _glibc()
    if functions is not None:
        mallopt, malloc_trim = functions
        mallopt(M_TRIM_THRESHOLD, TENSORFLOW_TRIM_THRESHOLD)
        malloc_trim(0)


class HeldMemory(keras.callbacks.Callback):
    """Holds freed memory while ``fit`` trains, releases it when training ends.

    TensorFlow sets its trim threshold when the training batches' first iterator starts,
    after ``on_train_begin``; holding again after each epoch's first step comes after it.

    Examples
    --------
    >>> from sklcifar.allocator import HeldMemory
    >>> callbacks = [HeldMemory()]  # as the estimators add it to model.fit
    """

    def on_train_begin(self, logs=None):
        hold()

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            hold()

    def on_train_end(self, logs=None):
        release()
