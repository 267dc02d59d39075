"""Third-party plugin loading as the user sees it on the command line: a broken plugin is one
warning line, strict mode makes it an error, and "unknown feature" says when the plugins are
switched off."""

from __future__ import annotations

import logging

from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core import host
from bionic_core.host import DISABLE_ENV, STRICT_ENV

from .conftest import TINY_EXPERIMENTS
from .test_plugin_manager import FakeEntryPoint, Scale, make_plugin

runner = CliRunner()
BROKEN_LINE = ("bionic: warning: feature plugin 'broken' (thirdparty-feature 1.2.3) not loaded: "
               "ModuleNotFoundError: No module named 'missing_dependency'")


def _missing_module():
    raise ModuleNotFoundError("No module named 'missing_dependency'")


def _must_not_load():
    raise AssertionError("a switched-off plugin was imported")


def plugins(monkeypatch, *eps: FakeEntryPoint, disabled: str | None = None) -> None:
    monkeypatch.setattr(host, "entry_points", lambda group: list(eps))
    monkeypatch.delenv(STRICT_ENV, raising=False)
    if disabled is None:
        monkeypatch.delenv(DISABLE_ENV, raising=False)
    else:
        monkeypatch.setenv(DISABLE_ENV, disabled)


def plugin_lines(result) -> list[str]:
    """The stderr lines about plugins, after checking that stderr holds no Python warning
    (``file.py:NN: RuntimeWarning``) and no traceback (other lines, such as progress notes,
    are not this module's business)."""
    assert "Warning:" not in result.stderr and ".py:" not in result.stderr, result.stderr
    assert "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if "plugin" in line]


def error_line(result, *fragments: str) -> str:
    """The one ``bionic: error:`` line of a user error (exit 2), containing every fragment."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("bionic: error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_broken_plugin_is_one_warning_line_and_the_rest_loads(in_tmp, monkeypatch):
    plugins(monkeypatch, FakeEntryPoint("broken", _missing_module),
            FakeEntryPoint("good", lambda: make_plugin("good_thirdparty", Scale)))
    result = runner.invoke(app, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert plugin_lines(result) == [BROKEN_LINE]
    assert '"good_thirdparty"' in result.stdout


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_warning_is_printed_once_per_command_and_not_again_through_logging(in_tmp, monkeypatch):
    plugins(monkeypatch, FakeEntryPoint("broken", _missing_module))
    (in_tmp / "exp.toml").write_text(TINY_EXPERIMENTS)
    root = Recorder()  # a root handler, as an application embedding bionic may have
    logging.getLogger().addHandler(root)
    try:
        result = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml",
                                     "--dry-run", "--json"])
    finally:
        logging.getLogger().removeHandler(root)
    assert result.exit_code == 0, result.output
    assert plugin_lines(result) == [BROKEN_LINE]
    assert root.messages == []


def test_strict_mode_turns_the_warning_into_a_one_line_error(in_tmp, monkeypatch):
    plugins(monkeypatch, FakeEntryPoint("broken", _missing_module))
    monkeypatch.setenv(STRICT_ENV, "1")
    error_line(runner.invoke(app, ["plugins", "list"]),
               "feature plugin 'broken' (thirdparty-feature 1.2.3) not loaded: "
               "ModuleNotFoundError")


def test_unknown_feature_says_plugins_are_switched_off_and_names_the_installed(
        in_tmp, monkeypatch):
    plugins(monkeypatch, FakeEntryPoint("zeta", _must_not_load),
            FakeEntryPoint("alpha", _must_not_load), disabled="1")
    result = runner.invoke(app, ["run", "quickstart", "--only", "alpha"])
    error_line(result, "unknown feature 'alpha'",
               "third-party plugins are switched off by BIONIC_DISABLE_PLUGINS=1",
               "installed but not loaded: alpha, zeta")


def test_unknown_feature_without_the_switch_does_not_mention_it(in_tmp, monkeypatch):
    plugins(monkeypatch)
    line = error_line(runner.invoke(app, ["run", "quickstart", "--only", "alpha"]),
                      "unknown feature 'alpha'")
    assert DISABLE_ENV not in line


def test_switched_off_with_nothing_installed(in_tmp, monkeypatch):
    plugins(monkeypatch, disabled="yes")
    error_line(runner.invoke(app, ["run", "quickstart", "--without", "alpha"]),
               "switched off by BIONIC_DISABLE_PLUGINS=yes (installed but not loaded: none)")
