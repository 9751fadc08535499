"""Perturbation steps of a Pipeline that act as per-epoch augmentation of the classifier.

In ``Pipeline([("gray", Grayscale()), ("noise", PixelNoise(0.03)), ("clf", clf)])`` the
noise step's ``fit_transform`` cannot know which estimator comes next. It returns a
`PerturbedImages`: an ordinary array holding one perturbed draw, so that any estimator
trains on one perturbed copy, which also carries the clean images it was given and the
list of perturbation steps drawn so far (chained steps append themselves, in order).

An sklcifar classifier (``ImageClassifier.fit``) that receives such an array trains on
the clean images instead and applies those steps afresh to every batch of every epoch,
before its own ``augment`` steps, with draws seeded from its own ``random_state``; its
stratified validation split is taken from the clean images. So with the same seed
``Pipeline([("noise", PixelNoise(0.03)), ("clf", C(augment=()))])`` and
``C(augment=[PixelNoise(0.03)])`` train identically.

The steps travel only straight to the classifier. An array computed from a
`PerturbedImages` (a slice, arithmetic, another transformer's output) carries no steps,
so a transformer between the perturbation step and the classifier leaves the classifier
one draw, as for any other estimator; sklcifar's own transformers warn when that happens
(`warn_if_pending`). Put perturbation steps last, right before the classifier.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["PendingPerturbationWarning", "PerturbedImages", "split_pending", "warn_if_pending"]


class PendingPerturbationWarning(UserWarning):
    """Per-epoch perturbation draws were lost on the way to the classifier."""


class PerturbedImages(np.ndarray):
    """One perturbed draw of a batch of images, with the clean images and pending steps.

    Parameters
    ----------
    perturbed : ndarray
        The perturbed draw (what the array holds).
    clean : ndarray
        The images before the first perturbation step, same shape.
    steps : sequence of PerturbationTransformer
        The perturbation steps, in the order they were applied.

    Attributes
    ----------
    clean : ndarray or None
        None on arrays derived from this one, which carry no steps.
    steps : tuple

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import PixelNoise
    >>> images = np.zeros((4, 8, 8, 1), dtype=np.uint8)
    >>> drawn = PixelNoise(0.25, random_state=0).fit_transform(images)
    >>> type(drawn).__name__, bool((drawn != images).any()), bool((drawn.clean == images).all())
    ('PerturbedImages', True, True)
    >>> (drawn + 0).clean is None  # derived arrays carry no steps
    True
    """

    clean: np.ndarray | None
    steps: tuple

    def __new__(cls, perturbed: np.ndarray, *, clean: np.ndarray, steps: Sequence):
        images = np.asarray(perturbed).view(cls)
        images.clean = np.asarray(clean)
        images.steps = tuple(steps)
        return images

    def __array_finalize__(self, obj) -> None:
        # Views, slices and results of operations are not the draw the steps describe.
        self.clean = None
        self.steps = ()

    def __reduce__(self):
        # Pickled (e.g. by Pipeline(memory=...)) as a plain array: the steps are not data.
        return np.asarray(self).__reduce__()


def split_pending(X) -> tuple[object, tuple]:
    """``(clean images, perturbation steps)`` of a `PerturbedImages`, else ``(X, ())``."""
    if isinstance(X, PerturbedImages) and X.clean is not None:
        return X.clean, X.steps
    return X, ()


def warn_if_pending(X, transformer) -> None:
    """Warn that ``transformer`` stands between perturbation steps and the classifier."""
    _, steps = split_pending(X)
    if steps:
        names = ", ".join(type(step).__name__ for step in steps)
        warnings.warn(
            f"{type(transformer).__name__} follows the perturbation step(s) {names}: a "
            "classifier after it trains on the one perturbed draw it passes on, not on "
            "fresh draws every epoch. Put perturbation steps right before the classifier "
            "(e.g. Grayscale, then PixelNoise, then the classifier).",
            PendingPerturbationWarning,
            stacklevel=3,
        )
