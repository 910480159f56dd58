"""The package as installed: version, typing marker, public names."""

from __future__ import annotations

import importlib.metadata
import os
import sysconfig
from pathlib import Path

import pytest

import openai_runs


def test_version_matches_metadata() -> None:
    """__version__ is the version the package was installed with."""
    assert openai_runs.__version__ == importlib.metadata.version("openai-runs")


def test_py_typed_marker_ships() -> None:
    """py.typed is in the package, so type checkers use our annotations."""
    assert (Path(openai_runs.__file__).parent / "py.typed").is_file()


def test_all_lists_exactly_the_public_names() -> None:
    """__all__ is sorted, complete and small: every public attribute, nothing else."""
    public = {
        name
        for name in vars(openai_runs)
        if not name.startswith("_")
        and getattr(getattr(openai_runs, name), "__module__", "").startswith(
            "openai_runs"
        )
    }
    # Submodules are namespaces, not names.
    public -= {"auth", "exceptions", "models", "testing"}
    assert sorted(openai_runs.__all__) == list(openai_runs.__all__)
    assert set(openai_runs.__all__) == public | {"converter"}
    assert len(openai_runs.__all__) <= 25


def test_console_script_is_declared() -> None:
    """The openai-runs command is installed with the package."""
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert any(ep.name == "openai-runs" for ep in scripts)


@pytest.mark.skipif(
    not os.environ.get("OPENAI_RUNS_TEST_INSTALLED"),
    reason="only `nox -s tests` promises an installed wheel",
)
def test_the_suite_tests_the_installed_package() -> None:
    """Under nox, the package imported is the installed wheel, not the checkout."""
    package = Path(openai_runs.__file__).resolve().parent
    assert package.parent == Path(sysconfig.get_paths()["purelib"]).resolve()


def test_the_version_is_written_once() -> None:
    """Only __init__.py spells the version; hatch and the User-Agent read it there."""
    package = Path(openai_runs.__file__).parent
    spelled = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if f'"{openai_runs.__version__}"' in path.read_text()
    }
    assert spelled == {"__init__.py"}


def test_the_old_name_of_watch_policy_still_imports() -> None:
    """PollPolicy (before 0.2) is WatchPolicy, without being a public name."""
    assert openai_runs.PollPolicy is openai_runs.WatchPolicy
    assert "PollPolicy" not in openai_runs.__all__
