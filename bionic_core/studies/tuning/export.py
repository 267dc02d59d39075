"""Export: the best trial's configuration as an ``[experiments.NAME]`` table of its own, written
into a new experiments file, appended to an existing one, or replacing an earlier export."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bionic_core.config import RunConfig
from bionic_core.contract.errors import BionicError
from bionic_core.host import Catalogue
from bionic_core.studies.tuning.space import SearchSpace

EXPORT_FIELDS = ("description", "dataset", "test_data", "val_fraction", "val_seed", "dedupe",
                 "features", "params", "connectome", "hidden_sizes", "activation", "lr",
                 "batch_size", "epochs", "patience", "monitor", "seeds", "ablation")


def best_config(base: RunConfig, space: SearchSpace, trial: Any) -> RunConfig:
    """``base`` with the fixed values and the trial's parameters (only the dimensions that
    are still in the space; a parameter of a feature that is off is left out)."""
    values = {k: v for k, v in trial.params.items()
              if "." not in k or k.split(".", 1)[0] in base.features}
    return space.apply(base, values)


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def toml_value(value: Any) -> str:
    """One TOML value (inline tables for dicts), for the exported experiment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _markers(name: str) -> tuple[str, str]:
    """The comment lines around the exported table ``name`` (without their newlines)."""
    return f"# >>> bionic tune export: {name}", f"# <<< bionic tune export: {name}"


def export_block(name: str, config: RunConfig, catalogue: Catalogue, note: str) -> str:
    """``[experiments.NAME]``: every field of ``config`` a run needs, so the table works in a
    file of its own (no ``extends``, no ``[defaults]`` needed)."""
    begin, end = _markers(name)
    lines = [begin, f"# {note}", f"[experiments.{name}]"]
    for key in EXPORT_FIELDS:
        value = getattr(config, key)
        if key == "params":
            value = {f: config.feature_params(f, catalogue[f]) for f in sorted(config.features)}
            value = {f: p for f, p in value.items() if p}
        if value is None or (isinstance(value, dict) and not value and key != "params"):
            continue
        lines.append(f"{key} = {toml_value(value)}")
    lines.append(end)
    return "\n".join(lines) + "\n"


def export_experiment(path: Path, name: str, config: RunConfig, catalogue: Catalogue,
                      note: str) -> Path:
    """Write ``config`` as ``[experiments.NAME]`` into ``path``: a new file, appended to an
    existing experiments file, or replacing an earlier export of the same name."""
    block = export_block(name, config.replace(experiment=name), catalogue, note)
    text = path.read_text() if path.is_file() else ""
    text = _merged(path, name, text, block) if text else _new_file(path, block)
    _write_checked(path, name, text)
    return path


def _merged(path: Path, name: str, text: str, block: str) -> str:
    """``text`` of an existing experiments file with ``block`` in place of an earlier export
    of ``name``, or appended; an experiment ``name`` bionic did not write is an error."""
    import tomllib

    try:
        existing = tomllib.loads(text).get("experiments", {})
    except tomllib.TOMLDecodeError as exc:
        raise BionicError(f"{path}: invalid TOML, not written: {exc}") from exc
    begin, end = (marker + "\n" for marker in _markers(name))
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        return head + block + rest.split(end, 1)[1]
    if name in existing:
        raise BionicError(f"{path}: experiments.{name} already exists and was not written "
                          "by bionic tune; choose another --export-name")
    return text.rstrip("\n") + "\n\n" + block


def _new_file(path: Path, block: str) -> str:
    return ("# Experiments exported by `bionic tune --export`; use them with\n"
            f"# `bionic run NAME --experiments {path.name}` or `bionic ablate ...`.\n\n"
            + block)


def _write_checked(path: Path, name: str, text: str) -> None:
    """Write ``text`` to ``path`` only once it loads as ``bionic run NAME --experiments`` will
    read it (through a temporary file, replaced atomically)."""
    from bionic_core.experiments import ExperimentFile

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    try:
        ExperimentFile.load(tmp).config(name)  # what `bionic run NAME --experiments` will read
    except BionicError as exc:
        tmp.unlink(missing_ok=True)
        raise BionicError(f"{path}: the export would not load, not written: {exc}") from exc
    os.replace(tmp, path)
