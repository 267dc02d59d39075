"""Named experiments: the shipped ``experiments.toml`` with a user's file layered on top
(``--experiments``, ``$BIONIC_EXPERIMENTS`` or ``./experiments.toml``), each entry a
:class:`~bionic_core.config.RunConfig` (``extends`` another, relative paths resolved)."""

from __future__ import annotations

import os
import sys
import sysconfig
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bionic_core.config import RunConfig, build_config
from bionic_core.contract.errors import BionicError

EXPERIMENTS_ENV = "BIONIC_EXPERIMENTS"


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def shipped_experiments_path() -> Path | None:
    """The experiments file that ships with bionic: the source tree's, else the installed copy."""
    candidates = (Path(__file__).resolve().parents[1] / "experiments.toml",
                  Path(sysconfig.get_path("data")) / "share" / "bionic" / "experiments.toml",
                  Path(sys.prefix) / "share" / "bionic" / "experiments.toml")
    return next((path for path in candidates if path.is_file()), None)


def user_experiments_path() -> Path | None:
    """The user's experiments file: ``$BIONIC_EXPERIMENTS``, else ./experiments.toml, else None."""
    env = os.environ.get(EXPERIMENTS_ENV)
    if env:
        return Path(env)
    local = Path.cwd() / "experiments.toml"
    return local if local.is_file() else None


def default_experiments_path() -> Path:
    """The file a user's experiments are read from: the user's file, else the shipped one."""
    return (user_experiments_path() or shipped_experiments_path()
            or Path(sys.prefix) / "share" / "bionic" / "experiments.toml")


def _resolve_file(value: Any, folder: Path, *, name_allowed: bool = True) -> Any:
    """A relative path in a file means relative to the file's folder; names stay names
    (``name_allowed``: a bare word without a suffix is a name, e.g. ``demo`` or ``billeh2020``)."""
    if not isinstance(value, str) or Path(value).is_absolute():
        return value
    if name_allowed and "/" not in value and not Path(value).suffix:
        return value
    return str((folder / value).resolve())


def _resolve_paths(table: Any, folder: Path) -> Any:
    """``table`` (an experiment or [defaults]) with its file paths made absolute."""
    if not isinstance(table, dict):
        return table
    out = dict(table)
    for key in ("dataset", "test_data"):
        if key in out:
            out[key] = _resolve_file(out[key], folder)
    if isinstance(out.get("connectome"), dict):
        wiring = dict(out["connectome"])
        for key in ("cells", "edges", "table"):  # files, except a table may be a published name
            if key in wiring:
                wiring[key] = _resolve_file(wiring[key], folder, name_allowed=key == "table")
        out["connectome"] = wiring
    return out


@dataclass
class ExperimentLayer:
    """One experiments file: its [defaults] (over those of the files below it) and its named
    experiments, with relative paths resolved against its folder."""

    path: Path
    defaults: dict[str, Any]
    experiments: dict[str, Any]

    @classmethod
    def read(cls, path: Path, below: ExperimentLayer | None) -> ExperimentLayer:
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise BionicError(f"{path}: invalid TOML: {exc}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise BionicError(f"{path}: cannot read the experiments file: "
                              f"{getattr(exc, 'strerror', None) or exc}") from exc
        for key in data:
            if key not in ("defaults", "experiments"):
                raise BionicError(f"{path}: unknown top-level key '{key}' "
                                  "(allowed: defaults, experiments)")
        for key in ("defaults", "experiments"):
            if not isinstance(data.get(key, {}), dict):
                raise BionicError(f"{path}: {key}: expected a table")
        defaults = _resolve_paths(data.get("defaults", {}), path.parent)
        experiments = {name: _resolve_paths(table, path.parent)
                       for name, table in data.get("experiments", {}).items()}
        return cls(path, _merge(below.defaults, defaults) if below else defaults, experiments)


@dataclass
class ExperimentFile:
    """The named experiments: the file shipped with bionic, and the user's file read on top of
    it. The user's experiments may ``extends`` shipped ones and replace them by name; an
    experiment extends the one of its own name in the file below (``extends`` = its name)."""

    layers: list[ExperimentLayer]  # the shipped file first, the user's last

    @property
    def path(self) -> Path:
        """The top file: the user's, or the shipped one when there is none."""
        return self.layers[-1].path

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> ExperimentFile:
        """The shipped experiments with ``path`` (default: :func:`user_experiments_path`) on
        top; every experiment is checked now, before any work starts."""
        user = Path(path) if path is not None else user_experiments_path()
        if user is not None and not user.is_file():
            raise BionicError(f"{user}: experiments file not found")
        shipped = shipped_experiments_path()
        paths = [p for p in (shipped, user) if p is not None]
        if len(paths) == 2 and paths[0].resolve() == paths[1].resolve():
            paths = paths[:1]
        if not paths:
            raise BionicError(f"{default_experiments_path()}: experiments file not found")
        layers: list[ExperimentLayer] = []
        for p in paths:
            layers.append(ExperimentLayer.read(p, layers[-1] if layers else None))
        file = cls(layers)
        for name in file.names():
            file.config(name)
        return file

    def names(self) -> list[str]:
        return list(dict.fromkeys(n for layer in self.layers for n in layer.experiments))

    def origin(self, name: str) -> Path:
        """The file that defines experiment ``name`` (the top-most one)."""
        return self.layers[self._find(name, len(self.layers) - 1)].path

    def _find(self, name: str, top: int) -> int:
        """The top-most layer at or below ``top`` that defines ``name``."""
        for index in range(top, -1, -1):
            if name in self.layers[index].experiments:
                return index
        known = ", ".join(self.layers[-1].experiments) or "none"
        below = ", ".join(n for n in self.names() if n not in self.layers[-1].experiments)
        shipped = f"; bionic ships: {below}" if below else ""
        raise BionicError(f"{self.path}: unknown experiment '{name}' (known: {known}){shipped}")

    def _raw(self, name: str, top: int, seen: tuple[tuple[int, str], ...] = ()
             ) -> dict[str, Any]:
        index = self._find(name, top)
        layer = self.layers[index]
        where = f"{layer.path}: experiments.{name}"
        if (index, name) in seen:
            raise BionicError(f"{where}: 'extends' forms a cycle")
        table = layer.experiments[name]
        if not isinstance(table, dict):
            raise BionicError(f"{where}: expected a table")
        parent = table.get("extends")
        if parent is None:
            return _merge(layer.defaults, table)
        if not isinstance(parent, str):
            raise BionicError(f"{where}.extends: expected the name of an experiment, got "
                              f"{parent!r}")
        if parent == name and not any(name in below.experiments for below in self.layers[:index]):
            raise BionicError(f"{where}: extends itself, but no file below defines '{name}'")
        below = index - 1 if parent == name else index
        return _merge(self._raw(parent, below, (*seen, (index, name))), table)

    def config(self, name: str) -> RunConfig:
        return build_config(self._raw(name, len(self.layers) - 1),
                            f"{self.origin(name)}: experiments.{name}", experiment=name)


