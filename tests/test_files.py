"""Atomic writes and output checks: nothing lost when a write fails or is killed."""

from __future__ import annotations

import errno
import json
import os
import shlex
import tempfile
import textwrap

import pytest

from sklcifar.files import atomic_path, atomic_write, check_output_path


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_creates_the_file(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert leftovers(tmp_path) == []


def test_atomic_path_keeps_the_suffix_and_folder(tmp_path):
    target = tmp_path / "set.npz"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".npz"
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"


def test_existing_file_is_refused_without_overwrite(tmp_path):
    target = tmp_path / "model.joblib"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        with atomic_write(target) as f:
            f.write(b"new")
    assert target.read_bytes() == b"old"
    with atomic_write(target, overwrite=True) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"


@pytest.mark.parametrize("overwrite", ["no", 1, None])
def test_overwrite_must_be_a_bool(tmp_path, overwrite):
    # "no" is truthy: taken as a bool it would replace the file it was meant to keep.
    target = tmp_path / "model.joblib"
    target.write_bytes(b"old")
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        with atomic_write(target, overwrite=overwrite) as f:
            f.write(b"new")
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        check_output_path(target, overwrite=overwrite)
    assert target.read_bytes() == b"old"


def test_an_error_mid_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "model.joblib"
    target.write_bytes(b"previous model")
    with pytest.raises(RuntimeError):
        with atomic_write(target, overwrite=True) as f:
            f.write(b"half a mod")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"previous model"
    assert leftovers(tmp_path) == []


def test_a_full_disk_leaves_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "model.joblib"
    target.write_bytes(b"previous model")
    real_write = os.write

    def full_disk_write(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as raised:
        with atomic_path(target, overwrite=True) as tmp:
            monkeypatch.setattr(os, "write", full_disk_write)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT)
            try:
                os.write(fd, b"partial")
            finally:
                os.close(fd)
    monkeypatch.setattr(os, "write", real_write)
    assert raised.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"previous model"
    assert leftovers(tmp_path) == []


def test_a_kill_mid_write_leaves_the_previous_file(tmp_path, kill_when_ready):
    target = tmp_path / "model.joblib"
    target.write_bytes(b"previous model")
    ready = tmp_path / "ready"
    # A writer that writes half its data, says so, and hangs until killed.
    script = textwrap.dedent(
        f"""
        import pathlib, time
        from sklcifar.files import atomic_write
        with atomic_write({str(target)!r}, overwrite=True) as f:
            f.write(b"half a new model")
            f.flush()
            pathlib.Path({str(ready)!r}).touch()
            time.sleep(60)
        """
    )
    kill_when_ready(script, ready)
    assert target.read_bytes() == b"previous model"


def test_check_output_path_refuses_an_existing_file(tmp_path):
    target = tmp_path / "out.npz"
    target.write_bytes(b"")
    with pytest.raises(FileExistsError, match="already exists"):
        check_output_path(target)
    assert check_output_path(target, overwrite=True) == target


def test_check_output_path_refuses_an_input(tmp_path):
    data = tmp_path / "cifar.tar.gz"
    data.write_bytes(b"archive")
    with pytest.raises(ValueError, match="also an input"):
        check_output_path(tmp_path / "." / "cifar.tar.gz", overwrite=True, inputs=[data])


def test_check_output_path_refuses_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.npz")


def test_check_output_path_refuses_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError):
        check_output_path(tmp_path)


def test_check_output_path_refuses_an_unwritable_folder(tmp_path, monkeypatch):
    # Root may write anywhere, so chmod cannot show this: fail the probe as a read-only
    # mount would.
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(PermissionError, match="not writable"):
        check_output_path(tmp_path / "out.npz")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_check_output_path_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="not writable"):
            check_output_path(folder / "out.npz")
    finally:
        folder.chmod(0o700)


# ------------------------------------------------------- the command line uses them
def cli(command, capsys, **paths):
    from sklcifar.cli import main

    code = main(shlex.split(command.format(**paths)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def archive(make_cifar_archive):
    return make_cifar_archive(kind="cifar10", n_per_class_train=4, n_per_class_test=2)


TRAIN = (
    "train --data {archive} --classifier convnet --subset 40 --epochs 1 --param depth=1 "
    "--param filters=2 --param 'dense=(4,)' --validation-fraction 0.25"
)


def test_perturb_refuses_to_write_over_its_input(archive, capsys):
    before = archive.read_bytes()
    code, _, err = cli("perturb --data {a} --corruption clean --out {a} --force", capsys, a=archive)
    assert code == 2 and "is also an input" in err
    assert archive.read_bytes() == before


def test_outputs_are_checked_before_any_work(archive, tmp_path, capsys, monkeypatch):
    import sklcifar.cli

    def no_work(*args, **kwargs):
        raise AssertionError("the command started working before checking its output")

    monkeypatch.setattr(sklcifar.cli, "load_cifar", no_work)
    monkeypatch.setattr(sklcifar.cli, "_perturbed_data", no_work)
    monkeypatch.setattr(sklcifar.cli, "load_model", no_work)
    existing = tmp_path / "model.sklcifar"
    existing.write_bytes(b"previous")
    cases = {
        TRAIN + " --out {out}": "already exists",
        TRAIN + " --out {tmp}/model.txt": "must end in .sklcifar",
        TRAIN + " --out {tmp}/missing/model.sklcifar": "does not exist",
        "perturb --data {archive} --corruption clean --out {out}": "already exists",
        "report {out} --data {archive} --baseline {tmp}/robustness.json --out {tmp} --force": (
            "robustness.json is also an input"
        ),
    }
    for command, message in cases.items():
        code, out, err = cli(command, capsys, archive=archive, out=existing, tmp=tmp_path)
        assert (code, out) == (2, ""), err
        assert message in err, (command, err)
    assert existing.read_bytes() == b"previous"
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "robustness.png").write_bytes(b"previous")
    code, _, err = cli(
        "report {m} --data {archive} --out {r}",
        capsys,
        archive=archive,
        m=existing,
        r=tmp_path / "report",
    )
    assert code == 2 and "robustness.png already exists" in err


def test_read_only_output_folder_is_found_before_training(archive, tmp_path, capsys, monkeypatch):
    import sklcifar.cli

    monkeypatch.setattr(sklcifar.cli, "load_cifar", lambda *a, **k: pytest.fail("trained"))

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    code, _, err = cli(TRAIN + " --out {tmp}/m.sklcifar", capsys, archive=archive, tmp=tmp_path)
    assert code == 2 and "is not writable" in err


def test_abbreviated_options_are_refused(archive, tmp_path, capsys):
    code, _, err = cli(
        TRAIN + " --epoch 3 --out {tmp}/m.sklcifar", capsys, archive=archive, tmp=tmp_path
    )
    assert code == 2 and "unrecognized arguments: --epoch 3" in err


def test_train_writes_the_safe_format_and_force_replaces(archive, tmp_path, capsys):
    from sklcifar.persistence import load_model

    model = tmp_path / "m.sklcifar"
    code, out, err = cli(TRAIN + " --out {m}", capsys, archive=archive, m=model)
    assert code == 0, err
    first = load_model(model)
    code, out, err = cli(
        TRAIN + " --random-state 3 --out {m} --force", capsys, archive=archive, m=model
    )
    assert code == 0, err
    assert load_model(model).named_steps["classifier"].random_state == 3
    assert first.named_steps["classifier"].random_state == 0
    code, out, err = cli("score {m} --data {archive} --json", capsys, archive=archive, m=model)
    assert code == 0 and json.loads(out)["n_images"] == 20
