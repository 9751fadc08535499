"""Loaders for the CIFAR-10 and CIFAR-100 image data sets.

`load_cifar` reads the official "python version" archives published by Alex Krizhevsky
(``cifar-10-python.tar.gz`` and ``cifar-100-python.tar.gz``), either straight from the
``.tar.gz`` or from its extracted folder, and returns the images in the height-width-channel
layout that Keras expects. `default_source` finds (or downloads) the data when no source is
given, and `stratified_subset` draws the small class-balanced subsets used for quick
experiments.

The batches inside the archives are Python pickles, which in general can run arbitrary
code when loaded. They are read here with a restricted unpickler that builds only numpy
arrays and plain data (the only things the official archives hold) and refuses any pickle
naming anything else, so a crafted archive cannot run code (the download made by
`default_source` is moreover checked against the official md5).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import numbers
import os
import pickle
import posixpath
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils import Bunch, resample
from sklearn.utils.validation import check_consistent_length

from .perturbations import CORRUPTIONS

__all__ = [
    "CIFAR100_MD5",
    "CIFAR100_URL",
    "default_source",
    "load_cifar",
    "load_cifar_c",
    "stratified_subset",
]

#: Official CIFAR-100 archive downloaded by `default_source` when no local copy is found.
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
#: md5 of `CIFAR100_URL` as published on https://www.cs.toronto.edu/~kriz/cifar.html.
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"

_ENV_VAR = "SKLCIFAR_DATA"
# Names a CIFAR copy has in the Keras cache, most wanted first: CIFAR-100 is the package's
# primary task. Keras 2 kept "<name>.tar.gz" and its extracted folder; Keras 3 keeps the
# extracted folder inside "<name>-target/" (a parent folder, which load_cifar accepts).
_CACHE_NAMES = (
    "cifar-100-python.tar.gz",
    "cifar-100-python",
    "cifar-100-python-target",
    "cifar-10-python.tar.gz",
    "cifar-10-batches-py",
    "cifar-10-batches-py-target",
)

_SPLITS = ("train", "test")
_LABEL_MODES = ("coarse", "fine")
_IMAGE_SIZE = 32
_N_FEATURES = 3 * _IMAGE_SIZE * _IMAGE_SIZE


@dataclass(frozen=True)
class _Layout:
    """Where one data set keeps its pickles inside the official archive."""

    dataset: str
    title: str
    folder: str
    meta: str
    batches: dict[str, tuple[str, ...]]
    # label_mode -> (key of the labels in a batch, key of their names in the meta file)
    label_keys: dict[str, tuple[bytes, bytes]]

    def members(self, split: str) -> tuple[str, ...]:
        return (*self.batches[split], self.meta)


# Order matters: when a source holds both data sets, CIFAR-100 wins, as in default_source.
_LAYOUTS = (
    _Layout(
        dataset="cifar100",
        title="CIFAR-100",
        folder="cifar-100-python",
        meta="meta",
        batches={"train": ("train",), "test": ("test",)},
        label_keys={
            "coarse": (b"coarse_labels", b"coarse_label_names"),
            "fine": (b"fine_labels", b"fine_label_names"),
        },
    ),
    _Layout(
        dataset="cifar10",
        title="CIFAR-10",
        folder="cifar-10-batches-py",
        meta="batches.meta",
        batches={
            "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
            "test": ("test_batch",),
        },
        # CIFAR-10 has a single set of 10 classes, whatever label_mode asks for.
        label_keys={
            "coarse": (b"labels", b"label_names"),
            "fine": (b"labels", b"label_names"),
        },
    ),
)

_DESCR = """\
{heading}
{underline}

Colour photographs of 32x32 pixels collected by Alex Krizhevsky, Vinod Nair and Geoffrey
Hinton, read from {source}.

**Data Set Characteristics:**

:Number of Instances: {n_samples} ({split} split)
:Number of Classes: {n_classes}{classes}
:Image shape: 32 x 32 x 3 (height, width, RGB channel), uint8 in 0..255

.. rubric:: References

- Alex Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", technical
  report, University of Toronto, 2009. https://www.cs.toronto.edu/~kriz/cifar.html
"""


def _keras_datasets_dir() -> Path:
    """Return the folder where Keras caches its data sets (``$KERAS_HOME/datasets``)."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser() / "datasets"


def default_source() -> Path:
    """Return the CIFAR archive or folder that `load_cifar` reads when given no source.

    The first of these wins:

    1. the environment variable ``SKLCIFAR_DATA``, naming a CIFAR-10 or CIFAR-100
       ``.tar.gz`` archive or its extracted folder;
    2. a copy in the Keras cache, ``$KERAS_HOME/datasets`` (``~/.keras/datasets`` when
       ``KERAS_HOME`` is not set), looked up in this order: ``cifar-100-python.tar.gz``,
       ``cifar-100-python/``, ``cifar-100-python-target/`` (Keras 3),
       ``cifar-10-python.tar.gz``, ``cifar-10-batches-py/``,
       ``cifar-10-batches-py-target/`` (Keras 3);
    3. the official CIFAR-100 archive `CIFAR100_URL`, downloaded into the Keras cache
       and checked against `CIFAR100_MD5` (about 170 MB).

    Returns
    -------
    path : pathlib.Path
        The archive or folder to read.

    Raises
    ------
    FileNotFoundError
        If ``SKLCIFAR_DATA`` is set but names nothing.
    OSError
        If the download fails, e.g. without network access; the message says how to
        provide the archive by hand.
    ValueError
        If the downloaded file does not have the official md5 (it is then deleted).

    Examples
    --------
    >>> from sklcifar.datasets import default_source
    >>> default_source()  # doctest: +SKIP
    PosixPath('/home/me/.keras/datasets/cifar-100-python.tar.gz')
    """
    configured = os.environ.get(_ENV_VAR)
    if configured:
        path = Path(configured).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"{_ENV_VAR}={configured!r} names nothing: set it to a CIFAR-10 or CIFAR-100 "
                "archive (.tar.gz) or to its extracted folder, or unset it"
            )
        return path
    cache = _keras_datasets_dir()
    for name in _CACHE_NAMES:
        if (cache / name).exists():
            return cache / name
    return _download_cifar100(cache)


def _download_cifar100(directory: Path) -> Path:
    """Download `CIFAR100_URL` into ``directory``, check its md5, return the archive path.

    The data go to a temporary file first and are renamed only once the md5 matches, so
    an interrupted or corrupt download never leaves a file that looks like the archive.
    """
    target = directory / "cifar-100-python.tar.gz"
    directory.mkdir(parents=True, exist_ok=True)
    fd, partial_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".part")
    partial = Path(partial_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(CIFAR100_URL, timeout=60) as response,
            ):
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
        # URLError, timeouts and dropped connections are all OSErrors.
        except OSError as err:
            raise OSError(
                f"could not download CIFAR-100 from {CIFAR100_URL} into {directory} ({err}). "
                f"Download {CIFAR100_URL} by other means, then either set the environment "
                f"variable {_ENV_VAR} to the archive's path "
                f"(export {_ENV_VAR}=/path/to/cifar-100-python.tar.gz) or pass it as "
                "load_cifar(source='/path/to/cifar-100-python.tar.gz')"
            ) from err
        if digest.hexdigest() != CIFAR100_MD5:
            raise ValueError(
                f"the file downloaded from {CIFAR100_URL} has md5 {digest.hexdigest()}, "
                f"expected {CIFAR100_MD5}: the download is corrupt, so it was deleted; try "
                "again"
            )
        os.replace(partial, target)
    finally:
        # Only a failed download is still there: a good one has been renamed.
        partial.unlink(missing_ok=True)
    return target


def _expected_members(split: str) -> str:
    """Describe, for error messages, the members a CIFAR source needs for ``split``."""
    return " or ".join(
        f"{layout.title} ({', '.join(f'{layout.folder}/{m}' for m in layout.members(split))})"
        for layout in _LAYOUTS
    )


def _find_layout(present: set[str], split: str, source: Path) -> tuple[_Layout, str]:
    """Return the data set whose ``split`` files are all in ``present``, and their prefix.

    ``present`` holds slash-separated paths relative to the source. The files may sit in
    the official folder or at the top: a folder source may be that folder itself, and an
    archive may hold the bare files.
    """
    for layout in _LAYOUTS:
        for prefix in (f"{layout.folder}/", ""):
            if all(prefix + member in present for member in layout.members(split)):
                return layout, prefix
    found = sorted(present)
    listing = ", ".join(found[:10]) + (f" (and {len(found) - 10} more)" if len(found) > 10 else "")
    raise ValueError(
        f"{source} is not a CIFAR-10 or CIFAR-100 data set: for split={split!r} expected "
        f"the members {_expected_members(split)}; found {listing or 'no files'}"
    )


def _corrupt(source: Path, detail: str) -> ValueError:
    return ValueError(f"could not read CIFAR archive {source}: truncated or corrupt ({detail})")


def _read_tar(source: Path, split: str) -> tuple[_Layout, dict[str, bytes]]:
    """Stream the tar archive once, keeping the raw bytes of the members ``split`` needs.

    Nothing is extracted to disk. The archive may be gzipped (as the official ones are) or
    plain; a gzipped one is read to its very end, where gzip's checksum and length are
    verified, so that corrupt or truncated data are reported rather than returned.
    """
    wanted = {
        prefix + member
        for layout in _LAYOUTS
        for prefix in (f"{layout.folder}/", "")
        for member in layout.members(split)
    }
    present: set[str] = set()
    raw: dict[str, bytes] = {}
    with open(source, "rb") as fileobj:
        # Decompress with the gzip module rather than tarfile's own "r|gz", which never
        # checks the CRC.
        gzipped = fileobj.read(2) == b"\x1f\x8b"
        fileobj.seek(0)
        stream = gzip.GzipFile(fileobj=fileobj, mode="rb") if gzipped else fileobj
        try:
            # "r|" reads the members in order without seeking back through the gzip data.
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    # Archives made with "tar -C dir ." name their members "./...".
                    name = posixpath.normpath(member.name).lstrip("/")
                    present.add(name)
                    if name in wanted:
                        raw[name] = archive.extractfile(member).read()
            # tarfile stops at the end-of-archive marker: read the padding after it too.
            while stream.read(1 << 20):
                pass
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise _corrupt(source, f"{type(err).__name__}: {err}") from err
    layout, prefix = _find_layout(present, split, source)
    return layout, {member: raw[prefix + member] for member in layout.members(split)}


def _read_folder(source: Path, split: str) -> tuple[_Layout, dict[str, bytes]]:
    """Read the files ``split`` needs from an extracted folder or from its parent."""
    present = {p.name for p in source.iterdir() if p.is_file()}
    for layout in _LAYOUTS:
        subfolder = source / layout.folder
        if subfolder.is_dir():
            present.update(f"{layout.folder}/{p.name}" for p in subfolder.iterdir() if p.is_file())
    layout, prefix = _find_layout(present, split, source)
    return layout, {
        member: (source / (prefix + member)).read_bytes() for member in layout.members(split)
    }


# The only callables the CIFAR pickles name: numpy's array reconstruction (``numpy.core``
# in the official archives, ``numpy._core`` when re-pickled under numpy 2) and, in
# protocol-2 pickles written by Python 3, ``_codecs.encode`` for bytes. Each only builds
# data; anything else (os.system, builtins.eval, ...) is refused before it is looked up.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_CIFAR_PICKLE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("_codecs", "encode"): codecs.encode,
}


class UnsafePickleError(pickle.UnpicklingError):
    """A CIFAR pickle names a callable that the official archives never contain."""


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays only: nothing in the file is run."""

    def find_class(self, module: str, name: str):
        try:
            return _CIFAR_PICKLE_GLOBALS[module, name]
        except KeyError:
            raise UnsafePickleError(
                f"it names {module}.{name}, which no CIFAR batch holds (only numpy arrays "
                "and plain data); refusing to load it, as loading could run code"
            ) from None


def _unpickle(raw: bytes, source: Path, member: str) -> dict:
    """Unpickle one CIFAR member, which must be a dict, with `_CifarUnpickler`."""
    try:
        content = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except UnsafePickleError as err:
        raise ValueError(f"{source}: {member} is not a CIFAR pickle: {err}.") from err
    # A damaged pickle can fail in many ways (UnpicklingError, EOFError, ValueError,
    # struct.error, ...); all of them mean the same thing to the caller.
    except Exception as err:
        raise _corrupt(source, f"{member}: {type(err).__name__}: {err}") from err
    if not isinstance(content, dict):
        raise ValueError(
            f"{source}: {member} is not a CIFAR batch: expected a pickled dict, "
            f"got {type(content).__name__}"
        )
    return content


def _batch_arrays(
    batch: dict, label_key: bytes, source: Path, member: str
) -> tuple[np.ndarray, np.ndarray]:
    """Check one batch and return its images as (n, 32, 32, 3) and its labels as int64."""
    missing = [key for key in (b"data", label_key) if key not in batch]
    if missing:
        raise ValueError(
            f"{source}: {member} lacks the keys {missing}; it has {sorted(batch, key=repr)}"
        )
    data = np.asarray(batch[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _N_FEATURES:
        raise ValueError(
            f"{source}: {member} has data of shape {data.shape} and dtype {data.dtype}, "
            f"expected uint8 of shape (n, {_N_FEATURES}) (one 32x32 RGB image a row)"
        )
    labels = np.asarray(batch[label_key])
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(data):
        raise ValueError(
            f"{source}: {member} has {labels.shape} labels of dtype {labels.dtype} for "
            f"{len(data)} images, expected one integer label per image"
        )
    # Rows hold the red, green then blue planes, each row-major: go to height-width-channel.
    images = data.reshape(-1, 3, _IMAGE_SIZE, _IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _label_names(meta: dict, key: bytes, source: Path, member: str) -> list[str]:
    names = meta.get(key)
    if not isinstance(names, list | tuple):
        raise ValueError(f"{source}: {member} lacks the list of class names {key!r}")
    return [name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in names]


def load_cifar(
    source: str | os.PathLike[str] | None = None,
    *,
    split: str = "train",
    label_mode: str = "coarse",
    return_X_y: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load the CIFAR-100 or CIFAR-10 images of one split.

    =================   ======================   =================
    Data set            CIFAR-100                CIFAR-10
    =================   ======================   =================
    Classes             20 coarse / 100 fine     10
    Samples train       50000                    50000
    Samples test        10000                    10000
    Samples per class   2500 / 500 (coarse)      5000 / 1000
                        500 / 100 (fine)
    Image shape         32 x 32 x 3 (RGB)        32 x 32 x 3 (RGB)
    Features            integers 0-255           integers 0-255
    =================   ======================   =================

    Which of the two data sets ``source`` holds is read from its contents (the names of
    its members), never from its file name.

    Parameters
    ----------
    source : str, os.PathLike or None, default=None
        The official "python version" archive (``cifar-100-python.tar.gz`` or
        ``cifar-10-python.tar.gz``, read without extracting it to disk), its extracted
        folder (``cifar-100-python/`` or ``cifar-10-batches-py/``), or the folder that
        holds that extracted folder. A folder holding both data sets gives CIFAR-100.
        None reads `default_source()`: ``$SKLCIFAR_DATA``, else the Keras cache, else a
        download of CIFAR-100.
    split : {"train", "test"}, default="train"
        Which split to load. CIFAR-10's train split is ``data_batch_1`` to
        ``data_batch_5``, in that order.
    label_mode : {"coarse", "fine"}, default="coarse"
        For CIFAR-100, "coarse" gives the 20 superclasses and "fine" the 100 classes. For
        CIFAR-10 both are accepted and give its only label set, the 10 classes.
    return_X_y : bool, default=False
        If True, return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        Dictionary-like object with the attributes:

        images : ndarray of shape (n_samples, 32, 32, 3), dtype uint8
            The images, height x width x RGB channel.
        target : ndarray of shape (n_samples,), dtype int64
            The class of each image, an index into ``target_names``.
        target_names : list of str
            The class names for ``label_mode``.
        coarse_target_names, fine_target_names : list of str
            CIFAR-100 only: the 20 superclass names and the 100 class names.
        dataset : {"cifar100", "cifar10"}
            Which data set ``source`` holds.
        label_mode : str
            The ``label_mode`` asked for.
        DESCR : str
            A description of the data set.

    (images, target) : tuple of ndarray
        If ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If ``source`` does not exist.
    ValueError
        If ``split`` or ``label_mode`` is not one of the allowed values, if the archive
        is truncated or corrupt, if ``source`` does not have the CIFAR layout, or if a
        batch is malformed (data not of shape (n, 3072), label count not matching).

    Notes
    -----
    The batches are Python pickles, read with a restricted unpickler that builds numpy
    arrays and plain data only: a pickle naming any other callable is refused with a
    ``ValueError`` before anything in it runs.

    Examples
    --------
    >>> from sklcifar.datasets import load_cifar
    >>> cifar = load_cifar("cifar-100-python.tar.gz")  # doctest: +SKIP
    >>> cifar.images.shape, cifar.target.shape  # doctest: +SKIP
    ((50000, 32, 32, 3), (50000,))
    >>> cifar.target_names[:3]  # doctest: +SKIP
    ['aquatic_mammals', 'fish', 'flowers']
    >>> X_test, y_test = load_cifar(
    ...     "cifar-10-python.tar.gz", split="test", return_X_y=True
    ... )  # doctest: +SKIP
    >>> X_test.shape  # doctest: +SKIP
    (10000, 32, 32, 3)
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if label_mode not in _LABEL_MODES:
        raise ValueError(f"label_mode must be one of {_LABEL_MODES}, got {label_mode!r}")
    path = default_source() if source is None else Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"CIFAR source {str(path)!r} does not exist: expected a cifar-100-python.tar.gz "
            "or cifar-10-python.tar.gz archive or its extracted folder"
        )
    layout, raw = _read_folder(path, split) if path.is_dir() else _read_tar(path, split)

    meta = _unpickle(raw.pop(layout.meta), path, layout.meta)
    label_key, names_key = layout.label_keys[label_mode]
    target_names = _label_names(meta, names_key, path, layout.meta)
    parts = [
        _batch_arrays(_unpickle(raw.pop(member), path, member), label_key, path, member)
        for member in layout.batches[split]
    ]
    images = np.concatenate([part[0] for part in parts])
    target = np.concatenate([part[1] for part in parts])
    if target.size and (target.min() < 0 or target.max() >= len(target_names)):
        raise ValueError(
            f"{path}: labels {label_key!r} range over {target.min()}..{target.max()}, "
            f"expected 0..{len(target_names) - 1} (one per class name)"
        )
    if return_X_y:
        return images, target

    heading = f"{layout.title} data set ({split} split)"
    bunch = Bunch(
        images=images,
        target=target,
        target_names=target_names,
        dataset=layout.dataset,
        label_mode=label_mode,
        DESCR=_DESCR.format(
            heading=heading,
            underline="=" * len(heading),
            source=path,
            n_samples=len(images),
            split=split,
            n_classes=len(target_names),
            classes=f" ({label_mode} labels)" if layout.dataset == "cifar100" else "",
        ),
    )
    if layout.dataset == "cifar100":
        for mode in _LABEL_MODES:
            bunch[f"{mode}_target_names"] = _label_names(
                meta, layout.label_keys[mode][1], path, layout.meta
            )
    return bunch


def stratified_subset(
    X: ArrayLike,
    y: ArrayLike,
    n_samples: int,
    *,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a class-stratified random subset of ``n_samples`` images, keeping every class.

    Each class gets a share of the subset proportional to its share of ``y`` (the
    rounding is spread at random), so a balanced ``y`` stays balanced.

    Parameters
    ----------
    X : array-like of shape (n, ...)
        The images (or any samples), indexed along the first axis.
    y : array-like of shape (n,)
        The class of each sample.
    n_samples : int
        Size of the subset, from ``2 * n_classes`` to ``n``.
    random_state : int, RandomState instance or None, default=None
        Controls the draw; pass an int for a reproducible subset.

    Returns
    -------
    X_sub : ndarray of shape (n_samples, ...)
    y_sub : ndarray of shape (n_samples,)
        The subset, in random order.

    Raises
    ------
    ValueError
        If ``n_samples`` is below two per class or above ``n``, or if the classes are so
        unbalanced that some class would get fewer than two samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.datasets import stratified_subset
    >>> X = np.arange(100).reshape(50, 2)
    >>> y = np.repeat([0, 1, 2, 3, 4], 10)
    >>> X_sub, y_sub = stratified_subset(X, y, 20, random_state=0)
    >>> np.bincount(y_sub)
    array([4, 4, 4, 4, 4])
    """
    X = np.asarray(X)
    y = np.asarray(y)
    check_consistent_length(X, y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one class per sample), got shape {y.shape}")
    if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool):
        raise TypeError(f"n_samples must be an int, got {n_samples!r}")
    classes = np.unique(y)
    if n_samples < 2 * len(classes):
        raise ValueError(
            "a subset needs at least two images per class: "
            f"got n_samples={n_samples}, n_classes={len(classes)}"
        )
    if n_samples > len(X):
        raise ValueError(f"n_samples={n_samples} exceeds the {len(X)} samples available")
    X_sub, y_sub = resample(
        X,
        y,
        replace=False,
        n_samples=n_samples,
        stratify=y,
        random_state=random_state,
    )
    counts = np.array([np.count_nonzero(y_sub == c) for c in classes])
    if counts.min() < 2:
        raise ValueError(
            f"n_samples={n_samples} leaves classes {classes[counts < 2].tolist()} with fewer "
            "than two samples: they are too rare in y for a proportional subset this small"
        )
    return X_sub, y_sub


def load_cifar_c(
    source: str | os.PathLike,
    corruption: str,
    severity: int,
    *,
    return_X_y: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load one corruption at one severity from an official CIFAR-10-C / CIFAR-100-C folder.

    =================  ==========================================
    ``images``         uint8, shape (n, 32, 32, 3): n = 10,000
    ``target``         int64, shape (n,): the test labels
    =================  ==========================================

    The folder (Hendrycks & Dietterich's release, zenodo.org/records/2535967 and
    /3555552) holds ``<corruption>.npy`` of shape (5 n, 32, 32, 3), severities 1..5 in
    blocks of n images in the order of the clean test split, and ``labels.npy`` with
    the 5 n labels. The files are memory-mapped: only the severity asked for is read.

    Parameters
    ----------
    source : path
        The CIFAR-10-C or CIFAR-100-C folder.
    corruption : str
        One of ``sklcifar.perturbations.CORRUPTIONS`` (the release's file names).
    severity : int
        1 (mildest) to 5.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images``, ``target``, ``corruption``, ``severity``.

    Raises
    ------
    ValueError
        For an unknown corruption, a severity outside 1..5, a file of the wrong shape
        or dtype, or labels that are not one per image and the same for each severity.
    FileNotFoundError
        For a missing folder or file.

    Examples
    --------
    >>> from sklcifar.datasets import load_cifar_c
    >>> X, y = load_cifar_c("CIFAR-10-C", "fog", 3, return_X_y=True)  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((10000, 32, 32, 3), (10000,))
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(
            f"unknown corruption {corruption!r}; CIFAR-C holds: {', '.join(CORRUPTIONS)}"
        )
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral):
        raise ValueError(f"severity must be an integer from 1 to 5; got {severity!r}")
    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be from 1 to 5; got {severity!r}")
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"CIFAR-C folder {str(folder)!r} does not exist")
    images = _load_npy(folder / f"{corruption}.npy")
    labels = _load_npy(folder / "labels.npy")
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or (len(images) % 5):
        raise ValueError(
            f"{folder / (corruption + '.npy')} holds {images.dtype} images of shape "
            f"{images.shape}; expected uint8 of shape (5 * n, height, width, 3): 5 "
            "severities of the n test images"
        )
    if labels.shape != (len(images),):
        raise ValueError(
            f"{folder / 'labels.npy'} holds labels of shape {labels.shape}; expected one "
            f"label per image of {corruption}.npy, shape ({len(images)},)"
        )
    n = len(images) // 5
    if labels.dtype.kind not in "iu":
        raise ValueError(
            f"{folder / 'labels.npy'} holds {labels.dtype} labels; expected integer class labels"
        )
    # The release repeats the test labels once per severity; blocks that differ mean the
    # file belongs to another test set (or another order), and every score would be wrong.
    blocks = np.asarray(labels).reshape(5, n)
    if not (blocks == blocks[0]).all():
        raise ValueError(
            f"{folder / 'labels.npy'} does not repeat one block of {n} labels for each of "
            "the 5 severities, as the CIFAR-C release does"
        )
    rows = slice((severity - 1) * n, severity * n)
    X, y = np.array(images[rows]), blocks[severity - 1].astype(np.int64)
    if return_X_y:
        return X, y
    return Bunch(images=X, target=y, corruption=corruption, severity=int(severity))


_NPY_MAGIC = b"\x93NUMPY"


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist (a CIFAR-C folder file)")
    # numpy reads a file without its header as a pickle and, refusing that, suggests
    # allow_pickle=True: say what the file is not instead.
    with path.open("rb") as file:
        if file.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise ValueError(f"{path} is not a .npy file (it does not start with numpy's header)")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable .npy file: {exc}") from exc
