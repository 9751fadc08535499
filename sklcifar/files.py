"""Writing files so that nothing is lost: atomic replacement and up-front output checks.

Every file sklcifar writes (models, perturbed test sets, reports, PNG, CSV, search outputs,
checkpoints) goes through :func:`atomic_path` or :func:`atomic_write`: the data is written to
a temporary file in the target's folder and moved onto the target with :func:`os.replace`
only once complete, so a full disk, an error or a kill mid-write leaves the previous file
intact. An existing target is replaced only when the caller says so (``overwrite=True``,
``--force`` on the command line).

:func:`check_output_path` is for the start of a long job: it refuses, before any work, an
output that exists (without ``overwrite``), that is one of the job's inputs, or whose folder
is missing or not writable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_path", "atomic_write", "check_output_path"]

StrPath = str | os.PathLike


def _check_overwrite(overwrite) -> None:
    # A string such as "no" is truthy: refuse it rather than replace a file on it.
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False; got {overwrite!r}.")


def _refuse_existing(path: Path) -> None:
    raise FileExistsError(
        f"{path} already exists; refusing to overwrite it. Choose another output path, or "
        "pass overwrite=True (--force on the command line) to replace it."
    )


@contextlib.contextmanager
def atomic_path(path: StrPath, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    The block must create the file at the yielded path, which does not exist yet. It lies
    in the target's folder (so the final :func:`os.replace` is atomic) and has the
    target's suffix (so writers that pick a format by suffix, such as ``numpy.savez`` or
    Keras, write the right one). If the block raises, the temporary file is removed and
    ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like
        The file to write.
    overwrite : bool, default=False
        Replace an existing ``path``; otherwise an existing ``path`` raises
        ``FileExistsError`` before anything is written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklcifar.files import atomic_path
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    _check_overwrite(overwrite)
    path = Path(path)
    if path.exists() and not overwrite:
        _refuse_existing(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; expected a file path to write.")
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"The folder {folder} of the output {path} does not exist.")
    descriptor, name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=folder
    )
    os.close(descriptor)
    temporary = Path(name)
    # The name is reserved and random; yield it free, for writers that refuse an existing
    # file (a save with overwrite=False).
    temporary.unlink()
    try:
        yield temporary
        # Re-check: another process may have created the target while this one wrote.
        if path.exists() and not overwrite:
            _refuse_existing(path)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(
    path: StrPath,
    mode: str = "wb",
    *,
    overwrite: bool = False,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO]:
    """Like :func:`atomic_path`, yielding the temporary file opened in ``mode``.

    The data is flushed to disk (``fsync``) before the file replaces ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklcifar.files import atomic_write
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "table.csv"
    >>> with atomic_write(target, "w") as f:
    ...     _ = f.write("a,b\\n")
    >>> target.read_text()
    'a,b\\n'
    """
    if not mode.startswith(("w", "x")):
        raise ValueError(f"atomic_write writes a new file: mode must be 'w...'; got {mode!r}.")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path, overwrite=overwrite) as temporary:
        with open(temporary, mode.replace("x", "w"), encoding=encoding, newline=newline) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())


def check_output_path(
    path: StrPath, *, overwrite: bool = False, inputs: Iterable[StrPath] = ()
) -> Path:
    """Check, before any long work, that ``path`` can be written; return it as a Path.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    ValueError
        ``path`` is one of ``inputs`` (writing it would destroy an input).
    FileNotFoundError, PermissionError, IsADirectoryError
        Its folder does not exist or is not writable, or ``path`` is a folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklcifar.files import check_output_path
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_output_path(folder / "model.joblib").name
    'model.joblib'
    """
    _check_overwrite(overwrite)
    path = Path(path)
    resolved = path.resolve()
    for source in inputs:
        if source is not None and Path(source).resolve() == resolved:
            raise ValueError(
                f"The output {path} is also an input ({source}); writing it would destroy "
                "the input. Choose another output path."
            )
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; expected a file path to write.")
    if path.exists() and not overwrite:
        _refuse_existing(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            f"The folder {folder} of the output {path} does not exist; create it first."
        )
    # Creating a file is the only reliable test (os.access ignores read-only mounts, and
    # says yes to root everywhere).
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise PermissionError(
            f"The folder {folder} of the output {path} is not writable ({error.strerror})."
        ) from error
    return path
