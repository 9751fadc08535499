"""Tests of sklcifar.datasets: CIFAR loading, default source, download and subsets."""

from __future__ import annotations

import hashlib
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from sklcifar import datasets
from sklcifar.datasets import default_source, load_cifar, stratified_subset


@pytest.fixture(autouse=True)
def isolated_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hide the user's SKLCIFAR_DATA and Keras cache, and make any download local.

    The download URL points to a file that does not exist, so a test that reached the
    downloader by mistake fails at once instead of touching the network. Returns the
    (empty) Keras datasets folder.
    """
    monkeypatch.delenv("SKLCIFAR_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(datasets, "CIFAR100_URL", (tmp_path / "no-such-file").as_uri())
    return tmp_path / "keras" / "datasets"


def _pixel(data: np.ndarray, i: int, row: int, col: int, channel: int) -> int:
    """A pixel read from the planar archive rows: 1024 red, 1024 green, 1024 blue."""
    return int(data[i, channel * 1024 + row * 32 + col])


def _assert_pixels(images: np.ndarray, data: np.ndarray) -> None:
    assert images.shape == (len(data), 32, 32, 3)
    assert images.dtype == np.uint8
    for i, row, col, channel in [(0, 0, 0, 0), (0, 0, 1, 1), (0, 1, 0, 2), (-1, 31, 7, 1)]:
        i = i % len(data)
        assert images[i, row, col, channel] == _pixel(data, i, row, col, channel)
    expected = np.stack([data[:, c * 1024 : (c + 1) * 1024] for c in range(3)], axis=-1)
    np.testing.assert_array_equal(images, expected.reshape(-1, 32, 32, 3))


# --- CIFAR-100 and CIFAR-10 content --------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("label_mode", ["coarse", "fine"])
def test_cifar100(make_cifar_archive, synthetic_cifar, split, label_mode):
    truth = synthetic_cifar("cifar100", 3, 2)
    cifar = load_cifar(make_cifar_archive("cifar100", 3, 2), split=split, label_mode=label_mode)

    assert cifar.dataset == "cifar100"
    assert cifar.label_mode == label_mode
    _assert_pixels(cifar.images, truth[split]["data"])
    assert cifar.target.dtype == np.int64
    np.testing.assert_array_equal(cifar.target, truth[split][f"{label_mode}_labels"])
    assert cifar.target_names == truth[f"{label_mode}_label_names"]
    assert len(cifar.target_names) == {"coarse": 20, "fine": 100}[label_mode]
    assert cifar.coarse_target_names == truth["coarse_label_names"]
    assert cifar.fine_target_names == truth["fine_label_names"]
    assert cifar.DESCR.startswith(f"CIFAR-100 data set ({split} split)")
    assert str(len(cifar.images)) in cifar.DESCR


def test_cifar100_fine_classes_nest_in_coarse(make_cifar_archive):
    path = make_cifar_archive("cifar100", 3, 1)
    fine = load_cifar(path, label_mode="fine").target
    coarse = load_cifar(path, label_mode="coarse").target
    assert len(np.unique(fine)) == 100
    assert len(np.unique(coarse)) == 20
    # Each fine class lies in exactly one superclass (the fixture's mapping f -> f % 20).
    np.testing.assert_array_equal(coarse, fine % 20)


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("label_mode", ["coarse", "fine"])
def test_cifar10(make_cifar_archive, synthetic_cifar, split, label_mode):
    truth = synthetic_cifar("cifar10", 4, 2)
    cifar = load_cifar(make_cifar_archive("cifar10", 4, 2), split=split, label_mode=label_mode)

    assert cifar.dataset == "cifar10"
    assert cifar.label_mode == label_mode
    # The train split is data_batch_1..5 concatenated in order.
    _assert_pixels(cifar.images, truth[split]["data"])
    np.testing.assert_array_equal(cifar.target, truth[split]["labels"])
    assert cifar.target.dtype == np.int64
    assert cifar.target_names == truth["label_names"]
    assert "coarse_target_names" not in cifar
    assert "fine_target_names" not in cifar
    assert cifar.DESCR.startswith(f"CIFAR-10 data set ({split} split)")


@pytest.mark.parametrize("kind", ["cifar100", "cifar10"])
def test_archive_folder_and_parent_agree(make_cifar_archive, kind):
    archive = make_cifar_archive(kind, 2, 1, seed=3)
    folder = make_cifar_archive(kind, 2, 1, fmt="folder", seed=3)
    sources = [archive, str(archive), folder, str(folder), folder.parent]
    reference = load_cifar(archive, label_mode="fine")
    for source in sources:
        cifar = load_cifar(source, label_mode="fine")
        np.testing.assert_array_equal(cifar.images, reference.images)
        np.testing.assert_array_equal(cifar.target, reference.target)
        assert cifar.target_names == reference.target_names
        assert cifar.dataset == kind


def test_dataset_is_read_from_contents_not_names(make_cifar_archive, tmp_path):
    # A CIFAR-10 archive and folder under CIFAR-100's names still load as CIFAR-10.
    archive = make_cifar_archive("cifar10", 1, 1)
    misnamed = tmp_path / "cifar-100-python.tar.gz"
    shutil.copy(archive, misnamed)
    folder = make_cifar_archive("cifar10", 1, 1, fmt="folder")
    renamed = folder.rename(folder.parent / "cifar-100-python")
    for source in (misnamed, renamed):
        assert load_cifar(source).dataset == "cifar10"


@pytest.mark.parametrize("mode", ["w:gz", "w"])
def test_archive_with_dot_slash_member_names(make_cifar_archive, tmp_path, mode):
    # "tar -C dir -cf x.tar ." names the members "./cifar-10-batches-py/..."; plain tars
    # are read as well as gzipped ones.
    folder = make_cifar_archive("cifar10", 1, 1, fmt="folder")
    archive = tmp_path / "dot.tar"
    with tarfile.open(archive, mode) as tar:
        tar.add(folder, arcname=f"./{folder.name}")
    np.testing.assert_array_equal(load_cifar(archive).target, load_cifar(folder).target)


def test_parent_folder_with_both_data_sets_gives_cifar100(make_cifar_archive):
    folder = make_cifar_archive("cifar100", 1, 1, fmt="folder")
    shutil.copytree(make_cifar_archive("cifar10", 1, 1, fmt="folder"), folder.parent / "c10")
    (folder.parent / "c10").rename(folder.parent / "cifar-10-batches-py")
    assert load_cifar(folder.parent).dataset == "cifar100"


def test_return_X_y(make_cifar_archive):
    path = make_cifar_archive("cifar100", 1, 1)
    X, y = load_cifar(path, split="test", label_mode="fine", return_X_y=True)
    cifar = load_cifar(path, split="test", label_mode="fine")
    np.testing.assert_array_equal(X, cifar.images)
    np.testing.assert_array_equal(y, cifar.target)


# --- Default source: environment variable, Keras cache, download ----------------------


def test_sklcifar_data_env_var(make_cifar_archive, monkeypatch):
    path = make_cifar_archive("cifar10", 1, 1)
    monkeypatch.setenv("SKLCIFAR_DATA", str(path))
    assert default_source() == path
    assert load_cifar().dataset == "cifar10"


def test_sklcifar_data_env_var_naming_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SKLCIFAR_DATA", str(tmp_path / "missing.tar.gz"))
    with pytest.raises(FileNotFoundError, match=r"SKLCIFAR_DATA=.*missing\.tar\.gz"):
        load_cifar()


def test_keras_cache_lookup_prefers_cifar100(make_cifar_archive, isolated_sources):
    cache = isolated_sources
    cache.mkdir(parents=True)
    shutil.move(make_cifar_archive("cifar10", 1, 1, fmt="folder"), cache)
    assert default_source() == cache / "cifar-10-batches-py"
    assert load_cifar().dataset == "cifar10"

    # Keras 3 keeps the extracted folder in "<name>-target/".
    target = cache / "cifar-100-python-target"
    target.mkdir()
    shutil.move(make_cifar_archive("cifar100", 1, 1, fmt="folder"), target)
    assert default_source() == target
    assert load_cifar().dataset == "cifar100"

    shutil.move(make_cifar_archive("cifar100", 1, 1), cache)
    assert default_source() == cache / "cifar-100-python.tar.gz"


def test_download_checks_md5(make_cifar_archive, isolated_sources, monkeypatch):
    served = make_cifar_archive("cifar100", 1, 1)
    monkeypatch.setattr(datasets, "CIFAR100_URL", served.as_uri())
    monkeypatch.setattr(datasets, "CIFAR100_MD5", hashlib.md5(served.read_bytes()).hexdigest())

    cifar = load_cifar(label_mode="fine")

    downloaded = isolated_sources / "cifar-100-python.tar.gz"
    assert sorted(isolated_sources.iterdir()) == [downloaded]
    assert downloaded.read_bytes() == served.read_bytes()
    np.testing.assert_array_equal(cifar.target, load_cifar(served, label_mode="fine").target)
    # Once cached, the archive is not downloaded again.
    monkeypatch.setattr(datasets, "CIFAR100_URL", "file:///no-such-file")
    assert default_source() == downloaded


def test_download_with_wrong_md5_leaves_nothing(make_cifar_archive, isolated_sources, monkeypatch):
    served = make_cifar_archive("cifar100", 1, 1)
    monkeypatch.setattr(datasets, "CIFAR100_URL", served.as_uri())
    monkeypatch.setattr(datasets, "CIFAR100_MD5", "0" * 32)
    with pytest.raises(ValueError, match=r"md5 [0-9a-f]{32}, expected 0{32}"):
        load_cifar()
    assert list(isolated_sources.iterdir()) == []


def test_download_without_network_says_what_to_do(isolated_sources, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(datasets, "CIFAR100_URL", "https://example.invalid/cifar-100.tar.gz")
    with pytest.raises(OSError) as excinfo:
        load_cifar()
    message = str(excinfo.value)
    assert "https://example.invalid/cifar-100.tar.gz" in message
    assert "name resolution" in message
    assert "SKLCIFAR_DATA" in message
    assert "source=" in message
    assert list(isolated_sources.iterdir()) == []


# --- Errors ----------------------------------------------------------------------------


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere" / "cifar-100-python.tar.gz"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_cifar(missing)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "validation"}, r"split must be one of .*got 'validation'"),
        ({"label_mode": "medium"}, r"label_mode must be one of .*got 'medium'"),
    ],
)
def test_bad_split_or_label_mode(make_cifar_archive, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_cifar(make_cifar_archive("cifar10", 1, 1), **kwargs)


@pytest.mark.parametrize("kind", ["cifar100", "cifar10"])
def test_truncated_archive(make_cifar_archive, tmp_path, kind):
    # Ten images a class give members far larger than gzip's buffers, so the cut lands
    # inside the data.
    archive = make_cifar_archive(kind, 10, 1)
    truncated = tmp_path / "truncated.tar.gz"
    raw = archive.read_bytes()
    truncated.write_bytes(raw[: len(raw) // 2])
    for split in ("train", "test"):
        with pytest.raises(
            ValueError, match=r"could not read CIFAR archive .*truncated or corrupt"
        ):
            load_cifar(truncated, split=split)


@pytest.mark.parametrize("damage", ["cut gzip trailer", "flip gzip crc"])
def test_damaged_gzip_trailer(make_cifar_archive, tmp_path, damage):
    # The tar data are intact: only gzip's CRC and length, after them, reveal the damage.
    raw = bytearray(make_cifar_archive("cifar10", 1, 1).read_bytes())
    if damage == "cut gzip trailer":
        del raw[-4:]
    else:
        raw[-8] ^= 0xFF
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(raw)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_cifar(damaged, split="test")


def test_file_that_is_not_an_archive(tmp_path):
    junk = tmp_path / "cifar-10-python.tar.gz"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_cifar(junk)


def test_truncated_pickle_in_folder(make_cifar_archive):
    folder = make_cifar_archive("cifar100", 1, 1, fmt="folder")
    raw = (folder / "train").read_bytes()
    (folder / "train").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"truncated or corrupt \(train: "):
        load_cifar(folder)


def test_tar_that_is_not_cifar(tmp_path):
    content = tmp_path / "photos"
    content.mkdir()
    (content / "cat.png").write_bytes(b"not really a png")
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(content, arcname="photos")
    with pytest.raises(ValueError, match="is not a CIFAR-10 or CIFAR-100") as excinfo:
        load_cifar(archive)
    message = str(excinfo.value)
    assert "cifar-100-python/train" in message
    assert "cifar-10-batches-py/data_batch_1" in message
    assert "found photos/cat.png" in message


def test_folder_that_is_not_cifar(tmp_path):
    with pytest.raises(ValueError, match=r"expected the members .*found no files"):
        load_cifar(tmp_path)


def test_incomplete_layout_loads_only_the_split_it_holds(make_cifar_archive):
    folder = make_cifar_archive("cifar10", 1, 1, fmt="folder")
    (folder / "data_batch_3").unlink()
    assert len(load_cifar(folder, split="test").images) == 10
    with pytest.raises(ValueError, match="data_batch_3"):
        load_cifar(folder, split="train")


def _rewrite(path: Path, change) -> None:
    batch = pickle.loads(path.read_bytes(), encoding="bytes")
    change(batch)
    path.write_bytes(pickle.dumps(batch, protocol=2))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.update({b"data": b[b"data"][:, :3000]}), r"shape \(\d+, 3000\)"),
        (lambda b: b.update({b"data": b[b"data"].astype(np.float32)}), "dtype float32"),
        (lambda b: b.update({b"fine_labels": b[b"fine_labels"][:-1]}), "one integer label"),
        (lambda b: b.update({b"fine_labels": [100] * len(b[b"fine_labels"])}), r"0\.\.99"),
        (lambda b: b.pop(b"data"), r"lacks the keys \[b'data'\]"),
    ],
)
def test_malformed_batch(make_cifar_archive, change, message):
    folder = make_cifar_archive("cifar100", 1, 1, fmt="folder")
    _rewrite(folder / "train", change)
    with pytest.raises(ValueError, match=message):
        load_cifar(folder, label_mode="fine")


def test_member_that_is_not_a_dict(make_cifar_archive):
    folder = make_cifar_archive("cifar100", 1, 1, fmt="folder")
    (folder / "meta").write_bytes(pickle.dumps(["fine", "coarse"]))
    with pytest.raises(ValueError, match="meta is not a CIFAR batch: expected a pickled dict"):
        load_cifar(folder)


# --- stratified_subset -----------------------------------------------------------------


def test_stratified_subset_is_balanced_and_reproducible():
    y = np.repeat(np.arange(10), 30)
    X = np.arange(len(y) * 2).reshape(len(y), 2)
    X_sub, y_sub = stratified_subset(X, y, 50, random_state=0)
    assert X_sub.shape == (50, 2)
    np.testing.assert_array_equal(np.bincount(y_sub), [5] * 10)
    # Rows stay paired with their labels.
    np.testing.assert_array_equal(y[X_sub[:, 0] // 2], y_sub)
    assert len(np.unique(X_sub[:, 0])) == 50
    X_again, y_again = stratified_subset(X, y, 50, random_state=0)
    np.testing.assert_array_equal(X_again, X_sub)
    np.testing.assert_array_equal(y_again, y_sub)


def test_stratified_subset_of_everything_and_of_images():
    y = np.repeat(np.arange(3), 4)
    images = np.arange(len(y) * 32 * 32 * 3, dtype=np.int64).reshape(len(y), 32, 32, 3)
    X_sub, y_sub = stratified_subset(images, y, len(y), random_state=1)
    assert X_sub.shape == images.shape
    np.testing.assert_array_equal(np.bincount(y_sub), [4, 4, 4])


@pytest.mark.parametrize(
    ("y", "n_samples", "error", "message"),
    [
        (
            np.repeat(np.arange(10), 5),
            19,
            ValueError,
            r"at least two images per class: got n_samples=19, n_classes=10",
        ),
        (np.repeat(np.arange(2), 5), 11, ValueError, "n_samples=11 exceeds the 10 samples"),
        (np.array([0] * 98 + [1, 1]), 10, ValueError, r"leaves classes \[1\] with fewer"),
        (np.repeat(np.arange(2), 5), 4.0, TypeError, "n_samples must be an int"),
        (np.zeros((10, 1), dtype=int), 4, ValueError, "y must be 1-D"),
    ],
)
def test_stratified_subset_errors(y, n_samples, error, message):
    X = np.zeros((len(y), 3))
    with pytest.raises(error, match=message):
        stratified_subset(X, y, n_samples, random_state=0)


# --- The real CIFAR-10 archive -----------------------------------------------------------


def test_real_cifar10(cifar10_train, cifar10_test):
    # Expected values from shared/data/SOURCE.md (checked against the official files).
    names = ["airplane", "automobile", "bird", "cat", "deer"]
    names += ["dog", "frog", "horse", "ship", "truck"]
    expected = {
        "train": (
            cifar10_train,
            50_000,
            [6, 9, 9, 4, 1, 1, 2, 7, 8, 3],
            "47af8b02cfcfb6cdf3dbbd1969ad7f1b70f4413f6f80f437b020ee4e5bc8304a",
            "2b7cd2f24487317614016b72ffd53071c3062f592f0eb300c18a770d41ae1253",
        ),
        "test": (
            cifar10_test,
            10_000,
            [3, 8, 8, 0, 6, 6, 1, 6, 3, 1],
            "f9b1e2130bab680db56eb06d886f7f1ad0f1183907ceff4659d1735c890f5b04",
            "cec8a24a1e92aa2ecaa0bbd3dbfa86bf6cd8759fbd209a832824c8cf0afca9d5",
        ),
    }
    for cifar, n, first_labels, x_sha256, y_sha256 in expected.values():
        assert cifar.dataset == "cifar10"
        assert cifar.target_names == names
        assert cifar.images.shape == (n, 32, 32, 3)
        assert cifar.images.dtype == np.uint8
        np.testing.assert_array_equal(np.bincount(cifar.target), [n // 10] * 10)
        assert cifar.target[:10].tolist() == first_labels
        assert hashlib.sha256(cifar.images.tobytes()).hexdigest() == x_sha256
        assert hashlib.sha256(cifar.target.astype(np.uint8).tobytes()).hexdigest() == y_sha256
