"""Where studies live: checking and opening Optuna RDB storages (SQLite, PostgreSQL,
MySQL) with heartbeats and retries of dead workers' trials."""

from __future__ import annotations

import contextlib
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import sqlalchemy
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

_BACKENDS = ("sqlite", "postgresql", "mysql")
_URL_EXAMPLES = (
    "sqlite:///runs/study.db, postgresql+psycopg://user:password@host:5432/db, "
    "mysql+pymysql://user:password@host/db"
)
# Seconds before an unreachable database server counts as down.
_CONNECT_TIMEOUT = 10
# The first bytes of every SQLite 3 database file.
_SQLITE_HEADER = b"SQLite format 3\x00"
#: Times a trial whose worker or training process died is run again.
MAX_RETRY = 2
# Tries at opening a storage whose tables another worker may be creating.
_CREATE_ATTEMPTS = 3


@contextlib.contextmanager
def _experimental_ok() -> Iterator[None]:
    # Optuna has called heartbeats, trial retries, stale-trial checks and its matplotlib
    # plots "experimental" since 2.x while documenting them as the way to do these things;
    # the warning would repeat on every trial.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield


def _hide_password(url: str) -> str:
    """``url`` with anything between ``user:`` and ``@`` masked, parsable or not."""
    return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", url)


def _check_sqlite_file(path: Path, shown: str) -> None:
    if not path.parent.is_dir():
        raise ValueError(f"storage {shown!r}: folder {str(path.parent)!r} does not exist.")
    if path.is_dir():
        raise ValueError(f"storage {shown!r}: {str(path)!r} is a folder; give a file name.")
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as file:
            if file.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                raise ValueError(
                    f"storage {shown!r}: {str(path)!r} is not an SQLite database; give a "
                    "new file name or an Optuna study database."
                )


def check_storage_url(url: str) -> None:
    """Check an Optuna RDB storage URL without creating anything.

    The scheme must name SQLite, PostgreSQL or MySQL with an installed driver; an SQLite
    file's folder must exist and the file, if it exists, be an SQLite database; a
    database server must accept a connection. No message shows the password. A URL
    without a password takes it from the environment the database driver reads
    (``PGPASSWORD`` for PostgreSQL) or its password file (``~/.pgpass``).

    Parameters
    ----------
    url : str
        A SQLAlchemy URL such as ``sqlite:///runs/study.db`` or
        ``postgresql+psycopg://user:password@host:5432/db``.

    Raises
    ------
    ValueError
        If the URL is malformed, its scheme unknown or its driver missing, the SQLite
        folder does not exist, or the SQLite path is a folder or another kind of file.
    ConnectionError
        If the database server cannot be reached or refuses the login.
    """
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):  # ValueError: e.g. a port not a number
        raise ValueError(
            f"storage {_hide_password(url)!r} is not a database URL; expected one like "
            f"{_URL_EXAMPLES}."
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in _BACKENDS:
        raise ValueError(
            f"storage scheme {parsed.drivername!r} (in {shown!r}) is not one of Optuna's RDB "
            f"storages ({', '.join(_BACKENDS)}); expected a URL like {_URL_EXAMPLES}."
        )
    try:
        parsed.get_dialect().import_dbapi()
    except (ImportError, sqlalchemy.exc.NoSuchModuleError) as error:
        raise ValueError(
            f"storage {shown!r}: the driver for {parsed.drivername!r} cannot be loaded "
            f"({error}). For PostgreSQL install psycopg (pip install 'psycopg[binary]') and "
            "write postgresql+psycopg://..."
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database not in (None, "", ":memory:"):
            _check_sqlite_file(Path(parsed.database), shown)
        return
    engine = sqlalchemy.create_engine(
        parsed,
        poolclass=sqlalchemy.pool.NullPool,
        connect_args={"connect_timeout": _CONNECT_TIMEOUT},
    )
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.DBAPIError as error:
        raise ConnectionError(
            f"cannot connect to storage {shown!r}: {str(error.orig).strip()}"
        ) from None
    finally:
        engine.dispose()


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = 10,
    grace_period: int | None = 60,
    max_retry: int | None = MAX_RETRY,
) -> RDBStorage:
    """Open an Optuna RDB storage with heartbeats and retry of dead workers' trials.

    A running trial records a heartbeat every ``heartbeat_interval`` seconds. When a
    worker next asks for a trial, any trial without a heartbeat for ``grace_period``
    seconds is marked failed and queued again with the same parameters, at most
    ``max_retry`` times.

    Parameters
    ----------
    url : str
        See ``check_storage_url`` (checked first).
    heartbeat_interval : int, default=10
    grace_period : int or None, default=60
        Must exceed ``heartbeat_interval`` (keep it well above: a live trial declared
        dead would crash its worker). None means twice the interval.
    max_retry : int or None, default=MAX_RETRY
        At least 0; None retries without limit.

    Returns
    -------
    storage : optuna.storages.RDBStorage

    Raises
    ------
    ValueError
        For a bad URL (see ``check_storage_url``), a heartbeat interval below 1 second, a
        grace period not above the interval, or a negative ``max_retry``.
    """
    if not (isinstance(heartbeat_interval, int) and heartbeat_interval >= 1):
        raise ValueError(
            "heartbeat_interval must be a whole number of seconds >= 1; got "
            f"{heartbeat_interval!r}."
        )
    if grace_period is not None and not grace_period > heartbeat_interval:
        raise ValueError(
            f"grace_period ({grace_period!r} s) must exceed heartbeat_interval "
            f"({heartbeat_interval} s): otherwise live trials are declared dead."
        )
    if max_retry is not None and max_retry < 0:
        raise ValueError(f"max_retry must be >= 0 (or None: no limit); got {max_retry!r}.")
    check_storage_url(url)
    server = sqlalchemy.engine.make_url(url).get_backend_name() != "sqlite"
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            with _experimental_ok():
                return RDBStorage(
                    url,
                    engine_kwargs=(
                        {"connect_args": {"connect_timeout": _CONNECT_TIMEOUT}} if server else None
                    ),
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                        max_retry=max_retry
                    ),
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Workers started together on a new database race to create Optuna's tables;
            # the loser finds the winner's tables when it tries again.
            if attempt == _CREATE_ATTEMPTS - 1:
                raise
            time.sleep(0.5 + np.random.default_rng().random())
