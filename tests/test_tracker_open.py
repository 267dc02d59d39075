"""Opening the tracking store: a new SQLite store another process is creating opens on a retry;
a store that cannot be used still fails with one line."""

from __future__ import annotations

import mlflow.tracking
import pytest

from bionic_core.contract.errors import BionicError
from bionic_core.studies import tracking


class FlakyClient:
    """Fails like a schema creation racing another process, ``failures`` times."""

    failures = 1
    made = 0

    def __init__(self, tracking_uri):
        type(self).made += 1
        if type(self).made <= type(self).failures:
            raise RuntimeError("(sqlite3.OperationalError) table dimension_attributes already "
                               "exists")


@pytest.fixture
def flaky(monkeypatch):
    FlakyClient.made = 0
    monkeypatch.setattr(mlflow.tracking, "MlflowClient", FlakyClient)
    monkeypatch.setattr(tracking.time, "sleep", lambda seconds: None)
    return FlakyClient


def test_a_store_being_created_elsewhere_opens_on_a_retry(flaky, tmp_path):
    tracker = tracking.Tracker(f"sqlite:///{tmp_path}/mlflow.db")
    assert isinstance(tracker._client, FlakyClient) and flaky.made == 2


def test_a_store_that_keeps_failing_ends_in_one_line(flaky, tmp_path):
    flaky.failures = 99
    try:
        with pytest.raises(BionicError, match=r"mlflow.db: cannot be used: .*dimension_attr"):
            tracking.Tracker(f"sqlite:///{tmp_path}/mlflow.db")
        assert flaky.made == tracking.SQLITE_OPEN_ATTEMPTS
        flaky.made = 0
        with pytest.raises(BionicError, match="cannot be used"):  # a server: no retry
            tracking.Tracker("http://127.0.0.1:9")
        assert flaky.made == 1
        old = tmp_path / "old.db"
        old.write_text("not a database")
        import os
        os.utime(old, (0, 0))  # an old store is not being created: no retry either
        flaky.made = 0
        with pytest.raises(BionicError, match="cannot be used"):
            tracking.Tracker(f"sqlite:///{old}")
        assert flaky.made == 1
    finally:
        flaky.failures = 1
