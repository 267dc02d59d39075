"""Where studies live: Optuna's RDB storage on a SQLAlchemy URL, and the bionic attributes a
study carries there (which experiment it belongs to, and what kind of study it is)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from bionic_core.contract.errors import BionicError, first_line

DEFAULT_STORAGE = "sqlite:///optuna.db"
# Study user attributes: which experiment a study belongs to, and what it is (tune | queue).
ATTR_EXPERIMENT = "bionic.experiment"
ATTR_KIND = "bionic.kind"
ATTR_BASE = "bionic.base"  # the fixed part of the trials' config (spec without the dimensions)


def display_url(url: str) -> str:
    """``url`` with its password hidden (for messages, tags and tables)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: shown as given
        return url


def absolute_url(url: str) -> str:
    """A relative SQLite path made absolute (so that it names the same file from any folder)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str((Path.cwd() / url[len(prefix):]).resolve())
    return url


def open_storage(url: str, where: str = "--storage", **heartbeat: Any) -> Any:
    """An Optuna ``RDBStorage`` on ``url``, or one BionicError line naming the URL.

    ``heartbeat`` passes ``heartbeat_interval``, ``grace_period`` and the stale-trial callback
    through (see :mod:`bionic_core.studies.work_queue`).
    """
    import optuna
    from sqlalchemy.engine import make_url

    try:
        backend = make_url(url).get_backend_name()
    except Exception as exc:  # noqa: BLE001
        raise BionicError(f"{where} {url}: not a database URL (e.g. sqlite:///optuna.db or "
                          "postgresql+psycopg2://user:password@host:5432/db)") from exc
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "postgresql":  # an unreachable host fails in seconds, not minutes
        engine["connect_args"] = {"connect_timeout": 10}
    elif backend == "sqlite":  # several worker processes share one file: wait for its lock
        engine["connect_args"] = {"timeout": 60}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, **heartbeat)
    except Exception as exc:  # noqa: BLE001 - driver, network, file, schema: all one line
        text = first_line(exc)
        if "password" in text.lower() or "@" in text:
            text = text.replace(url, display_url(url))
        raise BionicError(f"{where} {display_url(url)}: cannot be used: {text[:300]}") from exc


def study_attrs(storage: Any, name: str) -> dict[str, Any] | None:
    """The user attributes of study ``name`` in ``storage``, or None when there is none."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id)


def open_url(storage_url: str, where: str = "--storage") -> tuple[str, Any]:
    """``storage_url`` made absolute, and the storage on it (see :func:`open_storage`)."""
    url = absolute_url(storage_url)
    return url, open_storage(url, where)


def trial_count(storage: Any, name: str) -> int:
    """How many trials study ``name`` has in ``storage`` (0 when there is no such study)."""
    if study_attrs(storage, name) is None:
        return 0
    return len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
