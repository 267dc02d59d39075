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


def test_results_page_embeds_the_rebuilt_tables(tmp_path):
    from bionic_core.studies.results_tables import embedded_tables

    page = (REPO / "RESULTS.md").read_text(encoding="utf-8")
    embedded = embedded_tables(page)
    if not embedded or not TABLES.is_dir():
        pytest.skip("RESULTS.md embeds no rebuilt table")
    rebuilt = {p.name: p.read_text(encoding="utf-8") for p in build_tables(RESULTS, tmp_path)}
    for name, body in embedded.items():
        assert body == rebuilt.get(name), f"RESULTS.md's table {name} differs from the " \
            "exports: rerun `bionic results tables --page RESULTS.md`"


def test_fill_page_replaces_each_block_and_names_a_missing_table():
    from bionic_core.contract.errors import BionicError
    from bionic_core.studies.results_tables import embedded_tables, fill_page

    page = ("intro\n<!-- results-table: a.md -->\nold\n<!-- /results-table -->\nmiddle\n"
            "<!-- results-table: b.md -->\n<!-- /results-table -->\nend\n")
    filled = fill_page(page, {"a.md": "| A |\n", "b.md": "| B |\n", "c.md": "x"}, "P.md")
    assert filled == ("intro\n<!-- results-table: a.md -->\n| A |\n<!-- /results-table -->\n"
                      "middle\n<!-- results-table: b.md -->\n| B |\n<!-- /results-table -->\n"
                      "end\n")
    assert embedded_tables(filled) == {"a.md": "| A |\n", "b.md": "| B |\n"}
    with pytest.raises(BionicError, match=r"P.md: embeds b.md, which the exports do not"):
        fill_page(page, {"a.md": ""}, "P.md")


def test_headline_lists_a_test_split_once_under_its_own_name():
    from bionic_core.studies.comparison_model import SweepInfo
    from bionic_core.studies.results_tables import headline

    sweep = SweepInfo("", "abc", "s", "e", "", "explicit", "reference", (), (), 0)
    same = {"accuracy": 0.5, "macro_f1": 0.4}
    runs = [{"configuration": "reference",
             "final": {"test": same, "test_public": same, "val": {"accuracy": 0.6}}}]
    table = headline([(sweep, runs)])
    assert "| test_public |" in table and "| test |" not in table
    runs[0]["final"]["test"] = {"accuracy": 0.1, "macro_f1": 0.1}  # a test split of its own
    assert "| test |" in headline([(sweep, runs)])


@pytest.mark.skipif(not (RESULTS / "sweeps").is_dir(), reason="no committed exports in results/")
def test_figures_rebuild_from_the_exports_alone(tmp_path):
    from bionic_core.studies.results_tables import build_figures

    written = build_figures(RESULTS, tmp_path)
    sweeps = sorted(p.stem for p in (RESULTS / "sweeps").glob("*.json"))
    assert sorted(p.name for p in written if p.name.startswith("curves_")) == \
        [f"curves_{s}.png" for s in sweeps]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_explicit_configurations_are_named_by_what_they_change():
    from bionic_core.studies.comparison_model import Row
    from bionic_core.studies.results_tables import readable_name

    def row(name, removed=(), added=()):
        return Row(name, "k", "s", (), removed, added, "mixed", [0])

    assert readable_name(row("e:a+b+c", ("hebbian",))) == "−hebbian"
    assert readable_name(row("e:a+d", ("b", "c"), ("d",))) == "−b −c +d"
    assert readable_name(row("-hebbian", ("hebbian",))) == "-hebbian"  # designs' own names
    assert readable_name(row("e:a+b+c")) == "e:a+b+c"  # the reference itself


@pytest.mark.skipif(not (RESULTS / "sweeps" / "ef81a7bca68b.json").is_file(),
                    reason="needs the committed gap sweep export")
def test_a_run_shared_by_two_sweeps_carries_each_sweeps_own_name(tmp_path):
    import json
    import shutil

    from bionic_core.studies.results_tables import headline, load_sweep

    (tmp_path / "sweeps").mkdir()
    shutil.copytree(RESULTS / "runs", tmp_path / "runs")
    sweep = json.loads((RESULTS / "sweeps" / "ef81a7bca68b.json").read_text())
    (tmp_path / "sweeps" / "a.json").write_text(json.dumps(sweep))
    sweep["sweep_id"], sweep["name"] = "bbbbbbbbbbbb", "other"
    sweep["configurations"][0]["name"] = "renamed"  # the same runs under another name
    (tmp_path / "sweeps" / "b.json").write_text(json.dumps(sweep))
    first, _, records_a = load_sweep(tmp_path, tmp_path / "sweeps" / "a.json")
    second, _, records_b = load_sweep(tmp_path, tmp_path / "sweeps" / "b.json")
    table = headline([(first, records_a), (second, records_b)])
    assert "| other (bbbbbbbbbbbb) | renamed |" in table
    assert f"| {first.name} ({first.sweep_id}) | reference ({first.experiment}) |" in table


def test_a_joint_comparison_merges_the_configurations_of_several_sweeps(tmp_path):
    """results/comparisons.toml names comparisons across exported sweeps: one row per
    configuration key (the reference both sweeps share is one row), the first sweep's
    reference the reference; a bad entry is one line naming the file."""
    import shutil

    from bionic_core.contract.errors import BionicError

    shutil.copytree(RESULTS / "runs", tmp_path / "runs")
    (tmp_path / "sweeps").mkdir()
    for sweep_id in ("ef81a7bca68b", "463a198a8b6c"):
        shutil.copy(RESULTS / "sweeps" / f"{sweep_id}.json", tmp_path / "sweeps")
    (tmp_path / "comparisons.toml").write_text(
        '[comparisons.both]\nsweeps = ["ef81a7bca68b", "463a198a8b6c"]\n')
    written = {p.name: p for p in build_tables(tmp_path, tmp_path / "tables")}
    table = written["comparison_both.md"].read_text()
    assert "Disgust" in written["per_class_both.md"].read_text()
    rows = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| configuration")]
    assert rows.count("reference") == 1 and "-laminar" in rows  # screen_out's rows too
    assert len(rows) == 9  # gap's 3 configurations are all among screen_out's 9
    assert "gap-explicit-ef81a7bc (ef81a7bca68b), screen_out" in table.splitlines()[0]
    (tmp_path / "comparisons.toml").write_text('[comparisons.bad]\nsweeps = ["nosuch"]\n')
    with pytest.raises(BionicError, match=r"comparisons.toml: comparisons.bad: no exported "
                                          r"sweep nosuch"):
        build_tables(tmp_path, tmp_path / "tables")
    # another sweep's reference (another configuration key), named by its label
    shutil.copy(RESULTS / "sweeps" / "26b6d3e8fd8b.json", tmp_path / "sweeps")
    (tmp_path / "comparisons.toml").write_text(
        '[comparisons.rule]\nsweeps = ["463a198a8b6c", "26b6d3e8fd8b"]\n'
        'labels = { "26b6d3e8fd8b" = "covariance rule" }\n')
    text = {p.name: p for p in build_tables(tmp_path, tmp_path / "tables")}[
        "comparison_rule.md"].read_text()
    assert "| covariance rule |" in text and text.count("\n| reference |") == 1
    assert "Holm over the 9 comparisons with the reference of every compared sweep" in text
    (tmp_path / "comparisons.toml").write_text('[comparisons.bad]\nsweeps = "x"\n')
    with pytest.raises(BionicError, match=r"comparisons.bad: expected"):
        build_tables(tmp_path, tmp_path / "tables")
    # a misspelt field or table is refused, not silently left out of the tables
    (tmp_path / "comparisons.toml").write_text(
        '[comparisons.rule]\nsweeps = ["463a198a8b6c", "26b6d3e8fd8b"]\n'
        'label = { "26b6d3e8fd8b" = "covariance rule" }\n')
    with pytest.raises(BionicError, match=r"comparisons.toml: comparisons.rule: expected"):
        build_tables(tmp_path, tmp_path / "tables")
    (tmp_path / "comparisons.toml").write_text(
        '[comparison.rule]\nsweeps = ["463a198a8b6c", "26b6d3e8fd8b"]\n')
    with pytest.raises(BionicError, match=r"comparisons.toml: comparison: unknown; expected "
                                          r"tables \[comparisons.NAME\] or \[twins.NAME\]$"):
        build_tables(tmp_path, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()  # refused before any table is written


def test_a_joint_comparison_of_references_only_drops_the_sweeps_other_rows(tmp_path):
    """``references_only = true``: each sweep contributes its reference configuration alone,
    so the table (and its Holm family) holds the first sweep's reference and the later
    sweeps' references, not the first sweep's other rows."""
    import shutil

    from bionic_core.contract.errors import BionicError

    shutil.copytree(RESULTS / "runs", tmp_path / "runs")
    (tmp_path / "sweeps").mkdir()
    for sweep_id in ("463a198a8b6c", "26b6d3e8fd8b"):
        shutil.copy(RESULTS / "sweeps" / f"{sweep_id}.json", tmp_path / "sweeps")

    def rows_of(entry: str) -> list[str]:
        (tmp_path / "comparisons.toml").write_text(
            '[comparisons.refs]\nsweeps = ["463a198a8b6c", "26b6d3e8fd8b"]\n'
            'labels = { "26b6d3e8fd8b" = "covariance rule" }\n' + entry)
        text = {p.name: p for p in build_tables(tmp_path, tmp_path / "tables")}[
            "comparison_refs.md"].read_text()
        return [line.split(" | ")[0].lstrip("| ") for line in text.splitlines()
                if line.startswith("| ") and not line.startswith("| configuration")]

    every = rows_of("")
    assert len(every) == 10 and "-laminar" in every  # screen_out's 9 and the rule
    assert rows_of("references_only = false\n") == every
    assert rows_of("references_only = true\n") == ["reference", "covariance rule"]
    with pytest.raises(BionicError, match=r"comparisons.refs: expected .*references_only"):
        rows_of('references_only = "yes"\n')


def test_a_joint_comparison_can_take_another_configuration_of_the_first_sweep_as_reference(
        tmp_path):
    """``reference = "<config key>"``: that configuration of the first sweep is the reference
    (the Δ column says so and its own row has no Δ); with ``references_only`` it stands in for
    the first sweep's reference; a key the first sweep does not hold is refused by name."""
    import shutil

    from bionic_core.contract.errors import BionicError

    shutil.copytree(RESULTS / "runs", tmp_path / "runs")
    (tmp_path / "sweeps").mkdir()
    for sweep_id in ("463a198a8b6c", "26b6d3e8fd8b"):
        shutil.copy(RESULTS / "sweeps" / f"{sweep_id}.json", tmp_path / "sweeps")
    minus_laminar = "233a079b65ecd4ef"

    def table(entry: str) -> dict[str, list[str]]:
        (tmp_path / "comparisons.toml").write_text(
            '[comparisons.refs]\nsweeps = ["463a198a8b6c", "26b6d3e8fd8b"]\n'
            'labels = { "26b6d3e8fd8b" = "covariance rule" }\n' + entry)
        text = {p.name: p for p in build_tables(tmp_path, tmp_path / "tables")}[
            "comparison_refs.md"].read_text()
        return {cells[0]: cells[1:] for line in text.splitlines()
                if line.startswith("| ") and not line.startswith("| configuration")
                for cells in [[c.strip() for c in line.strip("| ").split(" | ")]]}

    plain = table("")
    chosen = table(f'reference = "{minus_laminar}"\n')
    assert plain["reference"][5] == "reference" and plain["-laminar"][5] != "reference"
    assert chosen["-laminar"][5] == "reference" and chosen["reference"][5] != "reference"
    assert chosen["covariance rule"][5] != plain["covariance rule"][5]
    only = table(f'reference = "{minus_laminar}"\nreferences_only = true\n')
    assert list(only) == ["-laminar", "covariance rule"]
    assert only["covariance rule"][5] == chosen["covariance rule"][5]
    with pytest.raises(BionicError, match=r"comparisons.refs: reference 0123456789abcdef is "
                                          r"not a configuration of the first sweep 463a198a8b6c"):
        table('reference = "0123456789abcdef"\n')
    with pytest.raises(BionicError, match=r"comparisons.refs: expected .*reference ="):
        table("reference = 3\n")


def _twin_exports(root: Path, sweeps: dict[str, dict[str, dict[int, list[dict]]]],
                  monitor: str = "val_macro_f1") -> None:
    """Minimal exports for twin tables: ``{sweep id: {configuration: {seed: epoch rows}}}``,
    each run's test accuracy its last epoch's holdout accuracy."""
    import json

    from bionic_core.studies.results_export import FORMAT

    (root / "sweeps").mkdir(parents=True)
    (root / "runs").mkdir()
    for sweep_id, configs in sweeps.items():
        entries = []
        for config, seeds in configs.items():
            keys = {}
            for seed, epochs in seeds.items():
                keys[str(seed)] = key = f"{sweep_id}.{config}.{seed}"
                (root / "runs" / f"{key}.json").write_text(json.dumps({
                    "format": FORMAT, "config": {"monitor": monitor}, "epochs": epochs,
                    "final": {"test": {"accuracy": epochs[-1]["val_accuracy"]}}}))
            entries.append({"name": config, "runs": keys})
        (root / "sweeps" / f"{sweep_id}.json").write_text(json.dumps({
            "format": FORMAT, "sweep_id": sweep_id, "name": f"sweep-{sweep_id}",
            "configurations": entries}))


def _epochs(f1: list[float], acc: list[float] | None = None) -> list[dict]:
    acc = acc or [0.5] * len(f1)
    return [{"epoch": i + 1, "lr": 1e-3 / 2 ** i, "val_macro_f1": f, "val_accuracy": a}
            for i, (f, a) in enumerate(zip(f1, acc, strict=True))]


def test_a_twin_table_sets_each_later_run_beside_its_earlier_twin(tmp_path):
    """``[twins.NAME]``: each run of the later sweep beside the earlier sweep's run of the same
    configuration name and seed; the kept epoch is the first with the best monitored value (as
    the training loop keeps it), so a tie keeps the earlier epoch; runs without a twin are left
    out; ``names`` renames configurations."""
    from bionic_core.studies.results_tables import _TwinSpec, twin_table

    _twin_exports(tmp_path, {
        "early": {"ref": {0: _epochs([0.1, 0.3, 0.2]), 1: _epochs([0.2, 0.1])},
                  "dense": {0: _epochs([0.4, 0.4, 0.1])}},
        "late": {"dense": {0: _epochs([0.4, 0.4, 0.1, 0.5, 0.2], [.5, .5, .5, .6, .61])},
                 "ref": {0: _epochs([0.1, 0.3, 0.2, 0.3]), 2: _epochs([0.9])},
                 "new": {0: _epochs([0.9])}}})
    text = twin_table(tmp_path, "t", _TwinSpec(("early", "late"), ("p15", "p30"),
                                               {"ref": "wiring"}))
    rows = [line for line in text.splitlines() if line.startswith("| ") and "(seed)" not in line]
    assert rows == ["| dense (0) | 1 / 3 | 4 / 5 | 2.5e-4 | 6.25e-5 | 50.00 → 61.00 |",
                    "| wiring (0) | 2 / 3 | 2 / 4 | 2.5e-4 | 1.25e-4 | 50.00 → 50.00 |"]
    assert "sweep-late (late), p30, beside its twin of sweep-early (early), p15" in text


def test_a_twin_tables_kept_epoch_follows_the_runs_monitored_metric(tmp_path):
    from bionic_core.studies.results_tables import _TwinSpec, twin_table

    epochs = _epochs([0.1, 0.3, 0.2], [0.6, 0.4, 0.5])
    _twin_exports(tmp_path, {"a": {"ref": {0: epochs}}, "b": {"ref": {0: epochs}}},
                  monitor="val_accuracy")
    text = twin_table(tmp_path, "t", _TwinSpec(("a", "b"), ("x", "y"), {}))
    assert "| ref (0) | 1 / 3 | 1 / 3 |" in text  # by macro-F1 it would be epoch 2


def test_a_twin_table_refuses_an_unknown_sweep_or_no_twin_by_name(tmp_path):
    from bionic_core.contract.errors import BionicError
    from bionic_core.studies.results_tables import _TwinSpec, twin_table

    _twin_exports(tmp_path, {"a": {"ref": {0: _epochs([0.1])}}, "b": {"ref": {1: _epochs([0.1])}}})
    with pytest.raises(BionicError, match=r"comparisons.toml: twins.t: no exported sweep nosuch"):
        twin_table(tmp_path, "t", _TwinSpec(("a", "nosuch"), ("x", "y"), {}))
    with pytest.raises(BionicError, match=r"twins.t: no run of b has a twin .* in a"):
        twin_table(tmp_path, "t", _TwinSpec(("a", "b"), ("x", "y"), {}))


@pytest.mark.skipif(not (RESULTS / "sweeps" / "2904201f020f.json").is_file(),
                    reason="needs the committed patience-30 sweep export")
def test_bionic_results_tables_writes_the_twin_tables_comparisons_toml_names(tmp_path):
    import shutil

    from bionic_core.contract.errors import BionicError

    shutil.copytree(RESULTS / "runs", tmp_path / "runs")
    (tmp_path / "sweeps").mkdir()
    for sweep_id in ("2a4ea203f81b", "2904201f020f"):
        shutil.copy(RESULTS / "sweeps" / f"{sweep_id}.json", tmp_path / "sweeps")
    (tmp_path / "comparisons.toml").write_text(
        '[twins.p30]\nsweeps = ["2a4ea203f81b", "2904201f020f"]\n'
        'labels = ["patience 15", "patience 30"]\n')
    written = {p.name: p for p in build_tables(tmp_path, tmp_path / "tables")}
    text = written["twins_p30.md"].read_text()
    assert sum(line.startswith("| reference (") for line in text.splitlines()) == 3
    assert sum(line.startswith("| dense_matched#0 (") for line in text.splitlines()) == 3
    for bad in ('sweeps = ["2a4ea203f81b"]\nlabels = ["a", "b"]\n',
                'sweeps = ["2a4ea203f81b", "2904201f020f"]\nlabels = ["a"]\n',
                'sweeps = ["2a4ea203f81b", "2904201f020f"]\nlabels = ["a", "b"]\nforce = true\n'):
        (tmp_path / "comparisons.toml").write_text("[twins.p30]\n" + bad)
        with pytest.raises(BionicError, match=r"comparisons.toml: twins.p30: expected .*labels"):
            build_tables(tmp_path, tmp_path / "tables")
