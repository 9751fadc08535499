"""Checkpoints that let a long ``fit`` survive a crash and resume where it stopped.

An sklcifar classifier with ``checkpoint_dir`` set writes ``checkpoint.npz`` into that folder
at the end of every ``checkpoint_every`` epochs (or, given a duration such as ``"10min"``,
at the end of the first epoch after that much time), and always at the end of the last
epoch. The
file is replaced atomically (`sklcifar.files.atomic_write`), so a kill at any moment leaves
the previous checkpoint or the new one, never half of one.

A ``fit`` whose folder holds a checkpoint resumes after the checkpoint's epoch with

- the network's variables, including the dropout layers' random-generator states;
- the optimiser's variables: its slots and its step count, which sets the position in the
  learning-rate schedule;
- early stopping's state (best loss, best weights, epochs without improvement);
- the per-epoch history.

Everything else a fit draws follows from the integer ``random_state`` (required with
checkpoints): the validation split, the initial weights, and the order and augmentation of
every batch, which come from (seed, epoch, batch index) (`training.AugmentedBatches`). So a
fit that is killed and run again ends with the same weights as one that was never
interrupted. A fit that already ended resumes to its end: it returns the finished model
without training.

A checkpoint records what it belongs to: the estimator's parameters, digests of the
training and validation data, and of the network's initial weights (which differ with
another ``init`` or warm start). A fit with anything else refuses it, naming what differs,
rather than continuing someone else's training. The file holds only arrays and JSON
(``numpy.load(..., allow_pickle=False)``), so loading one runs no code.

Custom callbacks passed in ``callbacks`` keep no state across a resume.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from sklearn.base import BaseEstimator

from .files import atomic_write

__all__ = [
    "CHECKPOINT_FILE",
    "CheckpointError",
    "checkpoint_interval",
    "read_checkpoint_epoch",
    "resume_or_start",
]

CHECKPOINT_FILE = "checkpoint.npz"
_FORMAT = 1
# Parameters that do not change what a fit computes: a resumed fit may change them.
_FREE_PARAMETERS = frozenset(
    {"checkpoint_dir", "checkpoint_every", "verbose", "callbacks", "init", "warm_start"}
)
_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*(s|min|h)")
_SECONDS = {"s": 1, "min": 60, "h": 3600}
# Early stopping's attributes that carry its progress from epoch to epoch.
_EARLY_STOPPING_STATE = ("wait", "best", "best_epoch", "stopped_epoch")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that belongs to another fit."""


def checkpoint_interval(checkpoint_every) -> tuple[str, float]:
    """``("epochs", n)`` or ``("seconds", s)``: ``checkpoint_every`` checked and read.

    ``checkpoint_every`` is a number of epochs (int >= 1) or a duration: a positive number
    followed by ``s``, ``min`` or ``h`` (``"90s"``, ``"10min"``, ``"1.5h"``).
    """
    if isinstance(checkpoint_every, int | np.integer) and not isinstance(checkpoint_every, bool):
        if checkpoint_every >= 1:
            return "epochs", int(checkpoint_every)
    elif isinstance(checkpoint_every, str):
        match = _DURATION.fullmatch(checkpoint_every.strip())
        if match and float(match[1]) > 0:
            return "seconds", float(match[1]) * _SECONDS[match[2]]
    raise ValueError(
        "checkpoint_every must be a number of epochs (an int >= 1) or a duration such as "
        f"'90s', '10min' or '1.5h'; got {checkpoint_every!r}."
    )


def check_settings(estimator) -> Path | None:
    """The checkpoint folder (created if missing) after checking the parameters, or None."""
    checkpoint_dir, random_state = estimator.checkpoint_dir, estimator.random_state
    if checkpoint_dir is None:
        return None
    checkpoint_interval(estimator.checkpoint_every)
    if getattr(estimator, "time_budget", None) is not None:
        raise ValueError(
            "checkpoint_dir cannot be combined with time_budget: a time-budget fit plans its "
            "learning-rate schedule from its running time, which a resumed fit cannot "
            "replay. Give a number of epochs instead."
        )
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise ValueError(
            "checkpoint_dir needs an integer random_state, so that a resumed fit draws the "
            "same validation split, initial weights and batches as the one it continues; "
            f"got random_state={random_state!r}."
        )
    folder = Path(checkpoint_dir)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"checkpoint_dir {str(folder)!r} is a file, not a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _describe(value) -> Any:
    """A JSON-able description of a parameter value, equal for equal settings."""
    if isinstance(value, BaseEstimator):
        params = value.get_params(deep=False)
        return {type(value).__qualname__: {k: _describe(v) for k, v in sorted(params.items())}}
    if isinstance(value, list | tuple):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in sorted(value.items())}
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return repr(value)


def _digest(arrays: Iterable[np.ndarray | None]) -> str:
    """Digest of arrays' shapes, dtypes and bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        if array is None:
            digest.update(b"none;")
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()


def fingerprint(
    estimator: BaseEstimator,
    model: keras.Model,
    *,
    training: Sequence[np.ndarray | None],
    validation: Sequence[np.ndarray] | None,
) -> dict[str, Any]:
    """What a checkpoint belongs to: parameters, data digests, initial-weight digest."""
    params = estimator.get_params(deep=False)
    return {
        "estimator": type(estimator).__qualname__,
        "parameters": {
            name: _describe(value)
            for name, value in sorted(params.items())
            if name not in _FREE_PARAMETERS
        },
        "training data": _digest(training),
        "validation data": _digest(validation or [None]),
        "initial weights": _digest(v.numpy() for v in model.variables),
    }


def _differences(saved: dict, current: dict) -> list[str]:
    """Human-readable differences between two fingerprints."""
    differences = []
    for key in current:
        if saved.get(key) == current[key]:
            continue
        if key == "parameters":
            names = sorted(set(saved.get(key, {})) | set(current[key]))
            differences += [
                f"{name}={saved[key].get(name, '(none)')!r} (now {current[key].get(name)!r})"
                for name in names
                if saved[key].get(name) != current[key].get(name)
            ]
        elif key == "estimator":
            differences.append(f"estimator {saved.get(key)} (now {current[key]})")
        elif key == "initial weights":
            differences.append(
                "the initial weights (another init, a warm start, or other library versions)"
            )
        else:
            differences.append(f"the {key}")
    return differences


def resume_or_start(
    estimator,
    batches,
    callbacks: Sequence[keras.callbacks.Callback],
    training: Sequence[np.ndarray | None],
    validation: Sequence[np.ndarray] | None,
    initial_epoch: int,
    epochs: int,
) -> tuple[int, list[keras.callbacks.Callback]]:
    """The epoch a fit starts at and the callbacks that write its checkpoints.

    Without ``checkpoint_dir``: ``initial_epoch`` and no callbacks. With it: the network,
    optimiser and ``batches`` restored from the folder's checkpoint, if there is one.
    ``training`` is (images, labels, sample weights) and ``validation`` (images, labels) or
    None, as the network sees them; ``callbacks`` are those that may stop training.
    """
    folder = check_settings(estimator)
    if folder is None:
        return initial_epoch, []
    identity = fingerprint(estimator, estimator.model_, training=training, validation=validation)
    first_epoch, callback = _FitCheckpoints(folder, estimator.checkpoint_every, identity).resume(
        estimator.model_,
        callbacks,
        batches,
        first_epoch=initial_epoch,
        last_epoch=initial_epoch + epochs,
    )
    return first_epoch, [callback]


class _FitCheckpoints:
    """The checkpoints of one ``fit``: where, how often, and what they belong to.

    Parameters
    ----------
    folder : Path
        Folder holding ``checkpoint.npz``.
    every : int or str
        Epochs, or time, between checkpoints (see `checkpoint_interval`).
    fingerprint : dict
        From `fingerprint`; a checkpoint with another one is refused.
    """

    def __init__(self, folder: Path, every, fingerprint: dict[str, Any]):
        self.path = Path(folder) / CHECKPOINT_FILE
        self.every = checkpoint_interval(every)
        self.fingerprint = fingerprint

    def resume(
        self,
        model: keras.Model,
        callbacks: Sequence[keras.callbacks.Callback],
        batches,
        *,
        first_epoch: int,
        last_epoch: int,
    ) -> tuple[int, keras.callbacks.Callback]:
        """Restore the checkpoint, if any; return the epoch to start at and the callback
        that writes checkpoints (append it after ``callbacks``).

        ``batches`` (a `training.AugmentedBatches`) is moved to the starting epoch.
        """
        early_stopping = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]
        state = self._load()
        history: dict[str, list[float]] = {}
        restore = None
        if state is not None:
            meta, arrays = state
            _assign(model.variables, arrays, "model", self.path)
            # The optimiser's variables exist: ImageClassifier builds it with the model.
            _assign(model.optimizer.variables, arrays, "optimizer", self.path)
            history = meta["history"]
            restore = (meta["early_stopping"], arrays)
            stopped = any(s["stopped_epoch"] > 0 for s in meta["early_stopping"])
            # A fit that early stopping ended trains no further: it only restores the best.
            first_epoch = last_epoch if stopped else meta["epoch"] + 1
        batches.start_at_epoch(first_epoch)
        callback = _CheckpointCallback(self, early_stopping, history, restore, last_epoch)
        return first_epoch, callback

    def _load(self) -> tuple[dict, dict[str, np.ndarray]] | None:
        if not self.path.exists():
            return None
        meta, arrays = _read(self.path)
        if meta.get("fingerprint") != self.fingerprint:
            differences = _differences(meta.get("fingerprint", {}), self.fingerprint)
            raise CheckpointError(
                f"{self.path} belongs to another fit: it differs in "
                f"{'; '.join(differences) or 'its format'}. Resume with the same parameters "
                "and data, or give this fit another checkpoint_dir (or delete the file to "
                "start afresh)."
            )
        return meta, arrays

    def save(
        self,
        model: keras.Model,
        epoch: int,
        history: dict[str, list[float]],
        early_stopping: Sequence[keras.callbacks.EarlyStopping],
    ) -> None:
        """Write the state after ``epoch`` (0-based), replacing the previous checkpoint."""
        arrays = _numbered("model", [v.numpy() for v in model.variables])
        arrays |= _numbered("optimizer", [v.numpy() for v in model.optimizer.variables])
        stopping = []
        for i, callback in enumerate(early_stopping):
            stopping.append(
                {name: _json_number(getattr(callback, name)) for name in _EARLY_STOPPING_STATE}
            )
            stopping[-1]["has_best_weights"] = callback.best_weights is not None
            if callback.best_weights is not None:
                arrays |= _numbered(f"best{i}", callback.best_weights)
        meta = {
            "format": _FORMAT,
            "fingerprint": self.fingerprint,
            "epoch": epoch,
            "history": history,
            "early_stopping": stopping,
            "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        with atomic_write(self.path, "wb", overwrite=True) as file:
            np.savez(file, meta=np.asarray(json.dumps(meta)), **arrays)


def _json_number(value):
    if value is None or isinstance(value, int | str):
        return value
    return float(value)


def _numbered(prefix: str, arrays: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}_{i:05d}": np.asarray(a) for i, a in enumerate(arrays)}


def _unnumbered(prefix: str, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [arrays[k] for k in sorted(arrays) if k.startswith(f"{prefix}_")]


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as exc:  # zip, npy and JSON errors all mean: not a checkpoint
        raise CheckpointError(
            f"{path} is not a readable sklcifar checkpoint ({type(exc).__name__}: {exc}); "
            "delete it to start the fit afresh."
        ) from exc
    if meta.get("format") != _FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {meta.get('format')!r}; this sklcifar reads "
            f"format {_FORMAT}. Delete it to start the fit afresh."
        )
    return meta, arrays


def read_checkpoint_epoch(folder) -> int | None:
    """Number of epochs done by the checkpoint in ``folder``, or None when there is none."""
    path = Path(folder) / CHECKPOINT_FILE
    if not path.exists():
        return None
    return _read(path)[0]["epoch"] + 1


def _assign(variables, arrays: dict[str, np.ndarray], prefix: str, path: Path) -> None:
    values = _unnumbered(prefix, arrays)
    shapes = [tuple(v.shape) for v in variables]
    if [tuple(a.shape) for a in values] != shapes:
        raise CheckpointError(
            f"{path} holds {prefix} variables of other shapes than this fit's network; "
            "delete it to start the fit afresh."
        )
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


class _CheckpointCallback(keras.callbacks.Callback):
    """Writes checkpoints at epoch ends; on a resume, restores early stopping's state.

    Placed after the early-stopping callbacks, so that it sees their decision of the
    epoch (and their state after it).
    """

    def __init__(self, checkpoints: _FitCheckpoints, early_stopping, history, restore, last):
        super().__init__()
        self.checkpoints, self.early_stopping = checkpoints, early_stopping
        # This fit's per-epoch history, the checkpoint's epochs first.
        self.history = {key: list(values) for key, values in history.items()}
        self._restore, self._last_epoch = restore, last
        self._last_save = time.monotonic()

    def on_train_begin(self, logs=None):
        # Early stopping resets itself in its own on_train_begin, which runs before this.
        if self._restore is None:
            return
        states, arrays = self._restore
        for i, (callback, state) in enumerate(zip(self.early_stopping, states, strict=True)):
            for name in _EARLY_STOPPING_STATE:
                setattr(callback, name, state[name])
            if state["has_best_weights"]:
                callback.best_weights = _unnumbered(f"best{i}", arrays)
        self._last_save = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            if key != "learning_rate":
                self.history.setdefault(key, []).append(float(value))
        final = epoch == self._last_epoch - 1 or self.model.stop_training
        unit, every = self.checkpoints.every
        if unit == "seconds":
            due = time.monotonic() - self._last_save >= every
        else:
            due = (epoch + 1) % every == 0
        if final or due:
            self.checkpoints.save(self.model, epoch, self.history, self.early_stopping)
            self._last_save = time.monotonic()
