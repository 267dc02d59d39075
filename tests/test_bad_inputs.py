"""Bad input, as one table: every file reader given a damaged file and every numeric setting
given nonsense ends in one ``bionic: error: <where>: <problem>`` line, exit status 2, no
traceback — before anything is trained or recorded."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import typer
from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core.config import RANGES

from .conftest import TINY_EXPERIMENTS, one_error_line

runner = CliRunner()


def invoke(args: list[str]):
    return runner.invoke(app, args)


def error_is_last_line(result, *fragments: str) -> str:
    """Like :func:`one_error_line`, where the progress of a log may come first: exit 2, the last
    stderr line the only ``bionic: error:`` one, with every fragment, no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("bionic: error: "), result.stderr
    assert sum(line.startswith("bionic: error:") for line in lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    assert "Traceback" not in result.output
    return lines[-1]


# ============================================================================ damaged files


def _npz_bytes(tmp: Path, n: int = 70) -> bytes:
    rng = np.random.default_rng(0)
    np.savez(tmp / "whole.npz", images=rng.integers(0, 256, (n, 48, 48), dtype=np.uint8),
             labels=np.arange(n) % 7)
    return (tmp / "whole.npz").read_bytes()


def truncated_npz(tmp: Path) -> list[str]:
    (tmp / "fer.npz").write_bytes(_npz_bytes(tmp)[:5000])
    return ["data", "info", str(tmp / "fer.npz")]


def npz_with_bad_crc(tmp: Path) -> list[str]:
    data = bytearray(_npz_bytes(tmp))
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)  # inside images.npy: the zip's CRC no longer matches
    (tmp / "fer.npz").write_bytes(bytes(data))
    return ["data", "info", str(tmp / "fer.npz")]


def npz_dir_with_truncated_split(tmp: Path) -> list[str]:
    folder = tmp / "fer"
    folder.mkdir()
    whole = _npz_bytes(tmp)
    (folder / "fer2013_train.npz").write_bytes(whole)
    (folder / "fer2013_publictest.npz").write_bytes(whole[:len(whole) - 100])
    return ["data", "info", str(folder)]


def npz_in_run(tmp: Path) -> list[str]:
    (tmp / "fer.npz").write_bytes(_npz_bytes(tmp)[:5000])
    return ["run", "tiny", "--experiments", "exp.toml", "--data", str(tmp / "fer.npz")]


def binary_csv(tmp: Path) -> list[str]:
    (tmp / "fer.csv").write_bytes(bytes(range(256)) * 20)
    return ["data", "info", str(tmp / "fer.csv")]


def csv_cut_short(tmp: Path) -> list[str]:
    row = "0," + " ".join(["7"] * 2304) + ",Training\n"
    (tmp / "fer.csv").write_text("emotion,pixels,Usage\n" + row + row[:900])
    return ["data", "info", str(tmp / "fer.csv")]


def truncated_png(tmp: Path) -> list[str]:
    from PIL import Image

    folder = tmp / "faces" / "train" / "angry"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((48, 48), 90, np.uint8)).save(folder / "a.png")
    (folder / "b.png").write_bytes((folder / "a.png").read_bytes()[:60])
    return ["data", "info", str(tmp / "faces")]


def text_named_png(tmp: Path) -> list[str]:
    folder = tmp / "faces" / "train" / "happy"
    folder.mkdir(parents=True)
    (folder / "a.png").write_text("not an image")
    return ["data", "info", str(tmp / "faces")]


def broken_experiments_toml(tmp: Path) -> list[str]:
    (tmp / "bad.toml").write_text("[experiments.x\nepochs = 3\n")
    return ["run", "x", "--experiments", str(tmp / "bad.toml")]


def binary_experiments_toml(tmp: Path) -> list[str]:
    (tmp / "bad.toml").write_bytes(b"\xff\xfe\x00\x01" * 10)
    return ["ablate", "x", "--experiments", str(tmp / "bad.toml")]


def broken_cells_csv(tmp: Path) -> list[str]:
    (tmp / "cells.csv").write_text('root_id,layer,cell_type,ei\n1,"L4\n')
    return ["connectome", "info", "--cells", str(tmp / "cells.csv")]


def garbage_cells_parquet(tmp: Path) -> list[str]:
    (tmp / "cells.parquet").write_bytes(b"PAR1" + os.urandom(200))
    return ["connectome", "info", "--cells", str(tmp / "cells.parquet")]


def garbage_probability_table(tmp: Path) -> list[str]:
    (tmp / "p.feather").write_bytes(os.urandom(300))
    return ["connectome", "info", "--table", str(tmp / "p.feather")]


def garbage_tracking_store(tmp: Path) -> list[str]:
    (tmp / "store.db").write_bytes(os.urandom(4096))
    return ["run", "tiny", "--experiments", "exp.toml",
            "--tracking-uri", f"sqlite:///{tmp / 'store.db'}"]


def garbage_optuna_storage(tmp: Path) -> list[str]:
    (tmp / "optuna.db").write_bytes(os.urandom(4096))
    return ["tune", "tiny", "--experiments", "exp.toml", "--trials", "1",
            "--storage", f"sqlite:///{tmp / 'optuna.db'}"]


def damaged_checkpoint(tmp: Path) -> list[str]:
    from bionic_core.config import resolve_features
    from bionic_core.experiments import ExperimentFile
    from bionic_core.host import load_catalogue
    from bionic_core.studies.tracked_run import checkpoint_path

    config = ExperimentFile.load(tmp / "exp.toml").config("tiny")
    config = resolve_features(config, load_catalogue(third_party=False), "tiny")
    checkpoint = checkpoint_path(config)
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"not a checkpoint")
    return ["run", "tiny", "--experiments", "exp.toml"]


DAMAGED: list[tuple[str, Callable[[Path], list[str]], tuple[str, ...]]] = [
    ("npz cut short", truncated_npz, ("fer.npz", "not a readable .npz file")),
    ("npz with a bad CRC", npz_with_bad_crc, ("fer.npz", "damaged .npz file", "CRC")),
    ("npz directory, one split cut short", npz_dir_with_truncated_split,
     ("fer2013_publictest.npz",)),
    ("npz given to bionic run", npz_in_run, ("fer.npz", "not a readable .npz file")),
    ("CSV of binary bytes", binary_csv, ("fer.csv", "not a UTF-8 CSV")),
    ("CSV cut short", csv_cut_short, ("fer.csv", "line 3")),
    ("PNG cut short", truncated_png, ("b.png", "cannot read image")),
    ("text named .png", text_named_png, ("a.png", "cannot read image")),
    ("experiments TOML broken", broken_experiments_toml, ("bad.toml", "invalid TOML")),
    ("experiments file of binary bytes", binary_experiments_toml,
     ("bad.toml", "cannot read the experiments file")),
    ("cell table CSV broken", broken_cells_csv, ("cells.csv", "cannot read table")),
    ("cell table Parquet garbage", garbage_cells_parquet, ("cells.parquet",
                                                            "cannot read table")),
    ("probability table Feather garbage", garbage_probability_table, ("p.feather",)),
    ("MLflow store not a database", garbage_tracking_store, ("store.db", "cannot be used")),
    ("Optuna storage not a database", garbage_optuna_storage, ("optuna.db", "cannot be used")),
    ("epoch checkpoint damaged", damaged_checkpoint,
     (".pt: damaged epoch checkpoint", "delete it")),
]


@pytest.mark.parametrize("make, fragments", [pytest.param(m, f, id=i) for i, m, f in DAMAGED])
def test_a_damaged_file_is_one_line(store, make, fragments):
    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    error_is_last_line(invoke(make(store)), *fragments)


def test_a_damaged_logged_model_is_one_line(store):
    """`bionic evaluate` of a run whose logged model file was damaged afterwards."""
    import json

    from bionic_core.studies.tracking import Tracker

    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    trained = invoke(["run", "tiny", "--experiments", "exp.toml", "--json", "--quiet"])
    assert trained.exit_code == 0, trained.output
    run_id = json.loads(trained.stdout.strip().splitlines()[-1])["run_id"]
    artifacts = Tracker().get_run(run_id).info.artifact_uri.removeprefix("file://")
    model = Path(artifacts) / "model" / "state_dict.pt"
    model.write_bytes(model.read_bytes()[:200])
    one_error_line(invoke(["evaluate", run_id, "--data", "demo-small"]),
                   f"run {run_id}: model/state_dict.pt: damaged logged model")


# ============================================================================ numbers

QUEUE = "sqlite:///queue.db"

NUMERIC: list[tuple[list[str], str]] = [
    (["run", "tiny", "--epochs", "-3"], "--epochs -3: expected at least 1"),
    (["run", "tiny", "--seed", "-1"], "--seed -1: expected 0 or more"),
    (["ablate", "tiny", "--epochs", "0"], "--epochs 0: expected at least 1"),
    (["ablate", "tiny", "--seeds", "0"], "--seeds 0: expected at least 1"),
    (["ablate", "tiny", "--design", "factorial", "--sample", "0"], "--sample 0"),
    (["ablate", "tiny", "--design", "fractional", "--resolution", "2"], "--resolution"),
    (["tune", "tiny", "--epochs", "0"], "--epochs 0"),
    (["tune", "tiny", "--trials", "-1"], "--trials -1: expected 0 or more"),
    (["tune", "tiny", "--timeout", "0"], "--timeout 0.0: expected more than 0"),
    (["worker", "--queue", QUEUE, "--max-runs", "0"], "--max-runs 0"),
    (["worker", "--queue", QUEUE, "--heartbeat-interval", "0"], "--heartbeat-interval 0"),
    (["worker", "--queue", QUEUE, "--grace-period", "-5"], "--grace-period -5"),
    (["worker", "--queue", QUEUE, "--max-retry", "-1"], "--max-retry -1"),
    (["data", "info", "demo", "--val-seed", "-1"], "--val-seed -1"),
    (["data", "info", "demo", "--val-fraction", "1.5"], "--val-fraction 1.5"),
    (["connectome", "info", "--seed", "-1"], "--seed -1"),
    (["connectome", "info", "--min-synapses", "0"], "--min-synapses 0"),
    (["connectome", "info", "--materialization", "-5"], "-5"),
    (["connectome", "info", "--null-seed", "-1"], "--null-seed -1"),
    (["connectome", "plot", "out.png", "--seed", "-1"], "--seed -1"),
    (["connectome", "plot", "out.png", "--min-synapses", "0"], "--min-synapses 0"),
    (["connectome", "plot", "out.png", "--materialization", "-5"], "-5"),
    (["connectome", "plot", "out.png", "--null-seed", "-1"], "--null-seed -1"),
    (["connectome", "fetch", "--version", "0"], "--version 0"),
    (["evaluate", "0" * 32, "--shift", "-1", "--data", "demo-small"], "--shift -1"),
    (["run", "tiny", "--epochs", "many"], "bionic run: Invalid value for '--epochs'"),
]

# Every numeric config setting, through `--set` and in the file: (setting, nonsense).
SETTINGS: list[tuple[str, str]] = [
    ("epochs", "-3"), ("batch_size", "0"), ("eval_batch_size", "0"), ("lr", "0"),
    ("val_fraction", "1.5"), ("val_seed", "-1"), ("patience", "-1"),
    ("seeds", "[]"), ("hidden_sizes", "[64, 0]"), ("cpu_threads", "0"), ("max_models", "-1"),
]


@pytest.mark.parametrize("args, fragment", NUMERIC, ids=[" ".join(a[:2] + a[-2:])
                                                         for a, _ in NUMERIC])
def test_a_nonsense_number_on_the_command_line_is_one_line(store, args, fragment):
    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    if args[0] in ("run", "ablate", "tune"):
        args = [*args, "--experiments", "exp.toml"]
    one_error_line(invoke(args), fragment)
    assert not (store / ".bionic").exists()  # nothing started


@pytest.mark.parametrize("setting, value", SETTINGS, ids=[s for s, _ in SETTINGS])
def test_a_nonsense_setting_is_one_line(store, setting, value):
    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    one_error_line(invoke(["run", "tiny", "--experiments", "exp.toml", "--set",
                           f"{setting}={value}"]), f"--set {setting}", "out of range")
    (store / "exp.toml").write_text(TINY_EXPERIMENTS + "[experiments.bad]\nextends = 'tiny'\n"
                                    f"{setting} = {value}\n")
    one_error_line(invoke(["run", "tiny", "--experiments", "exp.toml"]),
                   "exp.toml: experiments.bad", setting, "out of range")


def _numeric_options() -> set[tuple[str, str]]:
    """(command, option) of every int or float option of the app."""
    found: set[tuple[str, str]] = set()

    def walk(command, path: list[str]) -> None:
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])
        for param in command.params:
            annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            if param.param_type_name == "option" and annotation in (int, float):
                found.add((" ".join(path), param.opts[0]))

    walk(typer.main.get_command(app), [])
    return found


def test_the_table_covers_every_numeric_option_and_setting():
    """A numeric option or config setting added later needs its line in this table."""
    covered = set()
    for args, _ in NUMERIC:
        command = " ".join(a for a in args[:2] if not a.startswith("-") and a[0].islower()
                           and a not in ("tiny", "demo", "out.png"))
        option = next(a for a in args if a.startswith("--") and a != "--queue"
                      and a != "--design")
        covered.add((command, option))
    missing = _numeric_options() - covered
    assert not missing, f"numeric options without a bad-input case: {sorted(missing)}"
    assert {s for s, _ in SETTINGS} | {"seed"} == set(RANGES)  # seed: only as --seed
