"""The library versions a saved model records, and the warning when it loads under others.

Both ways of saving a model record them: a joblib pickle in the classifier's state
(``sklcifar.base.ImageClassifier``), a ``.sklcifar`` file in its ``model.json``
(``sklcifar.safe_format``). Loading under other versions warns with
``VersionMismatchWarning``, naming what changed.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras

__all__ = ["VersionMismatchWarning", "library_versions", "version_differences"]


class VersionMismatchWarning(UserWarning):
    """A saved model is loaded under other sklcifar, Keras or TensorFlow versions."""


def library_versions() -> dict[str, str]:
    """Versions that decide whether a saved model loads and predicts the same."""
    import tensorflow as tf

    from . import __version__

    return {"sklcifar": __version__, "keras": keras.__version__, "tensorflow": tf.__version__}


def version_differences(saved: Mapping[str, str | None]) -> str:
    """The libraries installed now at other versions than in ``saved``, for a warning.

    Parameters
    ----------
    saved : mapping of str to str
        Versions a model was saved with (``library_versions()`` then); other keys are
        ignored, and a missing one counts as a difference.

    Returns
    -------
    str
        ``"keras 2.0.0 (now 3.15.0), ..."``, or ``""`` when all versions are the same.

    Examples
    --------
    >>> from sklcifar.versions import library_versions, version_differences
    >>> version_differences(library_versions())
    ''
    >>> version_differences({**library_versions(), "keras": "2.0.0"}).startswith("keras 2.0.0 (now")
    True
    """
    return ", ".join(
        f"{name} {saved.get(name)} (now {version})"
        for name, version in library_versions().items()
        if saved.get(name) != version
    )
