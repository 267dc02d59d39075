"""docs/writing_features.md stays true: its table of built-in features and its hook table
match the code, and the README links the guide."""

from __future__ import annotations

import inspect

from bionic_core.contract import hookspecs

from .conftest import REPO

GUIDE = REPO / "docs" / "writing_features.md"


def table_rows(text: str, header_start: str) -> list[list[str]]:
    """The body rows of the markdown table whose header row starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def cell_list(cell: str) -> tuple[str, ...]:
    return () if cell == "—" else tuple(part.strip() for part in cell.split(","))


def test_builtin_table_matches_the_catalogue(catalogue):
    rows = table_rows(GUIDE.read_text(), "| feature | group | order |")
    documented = {row[0].strip("`"): row for row in rows}
    assert set(documented) == set(catalogue.features())
    for name, feature in catalogue.features().items():
        _, group, order, requires, conflicts, touches, hooks = documented[name]
        assert (group, int(order)) == (feature.group, feature.order), name
        assert cell_list(requires) == feature.requires, name
        assert cell_list(conflicts) == feature.conflicts, name
        assert cell_list(touches) == feature.touches, name
        for hook in catalogue.entries[name].hooks:
            assert f"`{hook.removeprefix('bionic_')}`" in hooks, (name, hook)


def test_hook_table_lists_every_hook_of_the_contract_with_its_arguments():
    rows = table_rows(GUIDE.read_text(), "| # | hook |")
    documented = {}
    for row in rows:  # "`bionic_x(a, b)` — single"
        call = row[1].split("`")[1]
        name, args = call.rstrip(")").split("(")
        documented[name] = [a.strip() for a in args.split(",") if a.strip()]
    specs = {name: list(inspect.signature(f).parameters)
             for name, f in inspect.getmembers(hookspecs, inspect.isfunction)
             if name.startswith("bionic_")}
    assert documented == specs


def test_readme_links_the_guide():
    assert "(docs/writing_features.md)" in (REPO / "README.md").read_text()
