"""CI check: the committed result tables equal what `bionic results tables` rebuilds from the
committed exports in ``results/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bionic_core.studies.results_tables import build_tables

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
TABLES = RESULTS / "tables"


@pytest.mark.skipif(not TABLES.is_dir(), reason=f"no committed result tables in {TABLES} "
                    "(`bionic results export` and `bionic results tables` write them)")
def test_committed_tables_match_the_exports(tmp_path):
    rebuilt = {p.name: p.read_text(encoding="utf-8") for p in build_tables(RESULTS, tmp_path)}
    committed = {p.name: p.read_text(encoding="utf-8") for p in TABLES.glob("*.md")}
    assert sorted(committed) == sorted(rebuilt), "tables missing or extra: rerun " \
        "`bionic results tables`"
    for name, text in rebuilt.items():
        assert committed[name] == text, f"results/tables/{name} differs from the exports: " \
            "rerun `bionic results tables`"
