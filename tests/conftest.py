"""Shared pytest fixtures for the sklcifar test suite.

CIFAR data
----------
make_cifar_archive
    Factory writing small synthetic CIFAR-10/CIFAR-100 sources in the exact layout of the
    official "python version" archives (function scope, under ``tmp_path``).
synthetic_cifar
    The function giving the content those sources hold, to check loaded data against.
cifar10_path, cifar10_train, cifar10_test
    The real CIFAR-10 archive in ``shared/data`` beside the repository, and its two
    splits loaded once per session; tests using them are skipped when it is absent.

The plain functions `synthetic_cifar_arrays` and `write_cifar_archive` behind the first
two fixtures are module-level so that fixtures of other scopes (e.g. a session-scoped one
using ``tmp_path_factory``) can build archives too; test modules should use the fixtures.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from sklearn.utils import Bunch

from sklcifar import training
from sklcifar.datasets import load_cifar


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``bf16`` on a CPU without native bf16 (emulated bf16 is very slow),
    or with SKLCIFAR_PRECISION=float32 (which makes any machine test as an AVX2-only one
    does)."""
    if training.cpu_supports_bf16() and os.environ.get(training.PRECISION_ENV) != "float32":
        return
    skip = pytest.mark.skip(
        reason="no native bf16 on this CPU (AVX-512 BF16 / AMX), or SKLCIFAR_PRECISION=float32"
    )
    for item in items:
        if item.get_closest_marker("bf16"):
            item.add_marker(skip)


# CI clones the repository with the read-only shared/ folder beside it, as on this machine.
REAL_CIFAR10 = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar-10-python.tar.gz"
)

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """Loader of a benchmark script as a module: ``load_benchmark("search")`` runs
    benchmarks/search.py's top level (the scripts are not part of the package)."""

    def load(name: str) -> ModuleType:
        sys.path.insert(0, str(BENCHMARKS))  # for the scripts' `_common` import
        try:
            spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(BENCHMARKS))
        return module

    return load


# Official folder and archive names of the two data sets.
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
CIFAR_ARCHIVES = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}


def synthetic_cifar_arrays(
    kind: str = "cifar100", n_per_class_train: int = 2, n_per_class_test: int = 1, seed: int = 0
) -> dict[str, Any]:
    """Return the deterministic content of a synthetic CIFAR data set.

    Every (fine) class has ``n_per_class_train`` train and ``n_per_class_test`` test
    images of random pixels, in random order.

    Returns
    -------
    content : dict
        ``content["train"]`` and ``content["test"]`` are dicts with ``"data"`` (uint8 of
        shape (n, 3072), rows planar as in the archives: 1024 red, 1024 green, 1024 blue
        values, row-major) and the int64 labels under the archive's key names:
        ``"labels"`` for CIFAR-10, ``"fine_labels"`` and ``"coarse_labels"`` for
        CIFAR-100. The class names are under the meta file's key names:
        ``"label_names"`` (10) for CIFAR-10, ``"fine_label_names"`` (100) and
        ``"coarse_label_names"`` (20) for CIFAR-100, where fine class ``f`` belongs to
        coarse class ``f % 20``.
    """
    rng = np.random.default_rng(seed)
    n_classes = {"cifar10": 10, "cifar100": 100}[kind]
    content: dict[str, Any] = {}
    for split, n_per_class in (("train", n_per_class_train), ("test", n_per_class_test)):
        labels = rng.permutation(np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class))
        data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        if kind == "cifar10":
            content[split] = {"data": data, "labels": labels}
        else:
            content[split] = {"data": data, "fine_labels": labels, "coarse_labels": labels % 20}
    if kind == "cifar10":
        content["label_names"] = [f"class_{i}" for i in range(10)]
    else:
        content["fine_label_names"] = [f"fine_{i:03d}" for i in range(100)]
        content["coarse_label_names"] = [f"coarse_{i:02d}" for i in range(20)]
    return content


def _batch(content: dict[str, Any], rows: slice, label_keys: tuple[str, ...], name: str) -> dict:
    """Build one batch dict with the keys, types and extras of the official pickles."""
    batch: dict[bytes, Any] = {
        b"batch_label": name.encode(),
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(rows.start, rows.stop)],
        b"data": content["data"][rows],
    }
    for key in label_keys:
        batch[key.encode()] = content[key][rows].tolist()
    return batch


def write_cifar_archive(
    directory: str | Path,
    kind: str = "cifar100",
    n_per_class_train: int = 2,
    n_per_class_test: int = 1,
    fmt: str = "tar.gz",
    seed: int = 0,
) -> Path:
    """Write a synthetic CIFAR source holding `synthetic_cifar_arrays` (same arguments).

    The layout is the official one, extra files included: ``cifar-100-python/`` with
    ``train``, ``test``, ``meta`` and ``file.txt~``, or ``cifar-10-batches-py/`` with
    ``data_batch_1`` to ``data_batch_5`` (the train images split in order), ``test_batch``,
    ``batches.meta`` and ``readme.html``; pickles use protocol 2, like the originals.

    Parameters
    ----------
    directory : str or Path
        Where to write; created if needed. Use a fresh one per call.
    kind : {"cifar100", "cifar10"}
    n_per_class_train, n_per_class_test : int
        Images per (fine) class in each split.
    fmt : {"tar.gz", "folder"}
        Write the official archive, or only its extracted folder.
    seed : int
        Seed of the pixel and label content.

    Returns
    -------
    path : Path
        The archive (``cifar-100-python.tar.gz`` / ``cifar-10-python.tar.gz``) or the
        extracted folder (``cifar-100-python/`` / ``cifar-10-batches-py/``), in
        ``directory``.
    """
    content = synthetic_cifar_arrays(kind, n_per_class_train, n_per_class_test, seed)
    folder = Path(directory) / CIFAR_FOLDERS[kind]
    folder.mkdir(parents=True)
    if kind == "cifar10":
        label_names = [name.encode() for name in content["label_names"]]
        meta = {b"num_cases_per_batch": 10000, b"label_names": label_names, b"num_vis": 3072}
        pickles = {"batches.meta": meta}
        bounds = np.linspace(0, len(content["train"]["data"]), 6).astype(int)
        for i in range(5):
            pickles[f"data_batch_{i + 1}"] = _batch(
                content["train"], slice(bounds[i], bounds[i + 1]), ("labels",), f"batch {i + 1}"
            )
        test = content["test"]
        pickles["test_batch"] = _batch(test, slice(0, len(test["data"])), ("labels",), "test")
        (folder / "readme.html").write_text("<html>CIFAR-10</html>\n")
    else:
        names = ("fine_label_names", "coarse_label_names")
        pickles = {"meta": {name.encode(): [n.encode() for n in content[name]] for name in names}}
        for split in ("train", "test"):
            part = content[split]
            rows = slice(0, len(part["data"]))
            pickles[split] = _batch(part, rows, ("fine_labels", "coarse_labels"), split)
        (folder / "file.txt~").write_text("")
    for name, obj in pickles.items():
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    if fmt == "folder":
        return folder
    archive = Path(directory) / CIFAR_ARCHIVES[kind]
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    shutil.rmtree(folder)
    return archive


@pytest.fixture
def make_cifar_archive(tmp_path: Path) -> Callable[..., Path]:
    """Factory ``make(kind="cifar100", n_per_class_train=2, n_per_class_test=1,
    fmt="tar.gz", seed=0) -> Path`` writing a synthetic CIFAR source (see
    `write_cifar_archive`), each call in its own new folder under ``tmp_path``, so the
    parent of a returned folder holds that data set only."""
    counter = itertools.count()

    def make(
        kind: str = "cifar100",
        n_per_class_train: int = 2,
        n_per_class_test: int = 1,
        fmt: str = "tar.gz",
        seed: int = 0,
    ) -> Path:
        directory = tmp_path / f"cifar-source-{next(counter)}"
        return write_cifar_archive(directory, kind, n_per_class_train, n_per_class_test, fmt, seed)

    return make


@pytest.fixture
def synthetic_cifar() -> Callable[..., dict[str, Any]]:
    """`synthetic_cifar_arrays`: the content a `make_cifar_archive` call with the same
    ``kind``, per-class counts and ``seed`` writes."""
    return synthetic_cifar_arrays


@pytest.fixture(scope="session")
def cifar10_path() -> Path:
    """The real CIFAR-10 archive, ``shared/data/cifar-10-python.tar.gz`` beside the repo."""
    if not REAL_CIFAR10.is_file():
        pytest.skip(f"real CIFAR-10 archive not found at {REAL_CIFAR10} (shared/ beside the repo)")
    return REAL_CIFAR10


def _load_read_only(path: Path, split: str) -> Bunch:
    # Shared by every test of the session: freeze the arrays so no test can alter them.
    bunch = load_cifar(path, split=split)
    bunch.images.setflags(write=False)
    bunch.target.setflags(write=False)
    return bunch


@pytest.fixture(scope="session")
def cifar10_train(cifar10_path: Path) -> Bunch:
    """The real CIFAR-10 train split (50,000 images), loaded once per session; read-only."""
    return _load_read_only(cifar10_path, "train")


@pytest.fixture(scope="session")
def cifar10_test(cifar10_path: Path) -> Bunch:
    """The real CIFAR-10 test split (10,000 images), loaded once per session; read-only."""
    return _load_read_only(cifar10_path, "test")


# One small network, trained once per session and shared by the robustness, plot and
# command-line tests: a few seconds of training on 300 real images. Its accuracy depends on
# the CPU's floating point (on an AVX2-only CPU it predicts at chance): tests using it assert
# that numbers are the model's own, never that it beats chance.
TINY_PIPELINE_PARAMS = {"depth": 2, "filters": 8, "dense": (32,), "epochs": 2, "random_state": 0}


@pytest.fixture(scope="session")
def tiny_pipeline(cifar10_train: Bunch):
    """``make_pipeline("convnet", **TINY_PIPELINE_PARAMS)`` fitted on 300 stratified real
    CIFAR-10 train images; shared by the session, so do not refit or alter it."""
    from sklcifar.datasets import stratified_subset
    from sklcifar.pipelines import make_pipeline

    X, y = stratified_subset(cifar10_train.images, cifar10_train.target, 300, random_state=0)
    return make_pipeline("convnet", **TINY_PIPELINE_PARAMS).fit(X, y)


@pytest.fixture(scope="session")
def tiny_model_path(tiny_pipeline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tiny_pipeline` saved with ``sklcifar.persistence.save_model``."""
    from sklcifar.persistence import save_model

    return save_model(tiny_pipeline, tmp_path_factory.mktemp("models") / "tiny.joblib")


@pytest.fixture(scope="session")
def cifar10_test_small(cifar10_test: Bunch) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: 200 stratified real CIFAR-10 test images, read-only."""
    from sklcifar.datasets import stratified_subset

    X, y = stratified_subset(cifar10_test.images, cifar10_test.target, 200, random_state=0)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


@pytest.fixture
def kill_when_ready() -> Callable[[str, Path], None]:
    """``run(script, ready)``: start ``python -c script``, wait until it creates the file
    ``ready`` (a writer says so half-way through a write), then SIGKILL it, as a crash or
    an impatient user would."""

    def run(script: str, ready: Path) -> None:
        writer = subprocess.Popen([sys.executable, "-c", script])
        try:
            deadline = time.monotonic() + 120
            while not ready.exists():
                assert writer.poll() is None, "the writer exited before writing"
                assert time.monotonic() < deadline, "the writer never started writing"
                time.sleep(0.05)
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
        finally:
            if writer.poll() is None:
                writer.kill()

    return run
