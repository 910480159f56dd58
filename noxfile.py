"""Development sessions: `nox` runs lint, typecheck, tests and docs."""

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True
# Only PyPI is reachable from CI: use the Pythons this machine has, never a
# downloaded build, and skip (with a message) a version it lacks.
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = False

PYPROJECT = nox.project.load_toml("pyproject.toml")
# Every version the classifiers claim.
PYTHONS = ["3.11", "3.12", "3.13"]
# The suite is measured once; the other versions only run it.
COVERAGE_PYTHON = PYTHONS[0]


def _add_pyenv_pythons() -> None:
    """Make pyenv's Pythons findable without activating them.

    pyenv's shims answer `python3.12` only for the version pyenv has
    selected, so nox would skip the others; their own bin directories work.
    """
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = [
        str(bin_dir)
        for version in PYTHONS
        for bin_dir in sorted(root.glob(f"versions/{version}.*/bin"))[-1:]
    ]
    path = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join([*path, *(d for d in found if d not in path)])


_add_pyenv_pythons()


def group(name: str) -> list[str]:
    return nox.project.dependency_groups(PYPROJECT, name)


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", *group("typing"))
    session.run("mypy")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The suite on every Python the classifiers claim; coverage on the first."""
    coverage = session.python == COVERAGE_PYTHON
    # The built wheel, as users install it: a file the wheel leaves out, or
    # a version it gets wrong, fails here and not after a release.
    wheel_dir = Path(session.create_tmp()) / "wheel"
    for old in wheel_dir.glob("*.whl"):
        old.unlink()
    session.run(
        "uv",
        "build",
        "--wheel",
        "--out-dir",
        str(wheel_dir),
        "--quiet",
        external=True,
    )
    (wheel,) = wheel_dir.glob("*.whl")
    session.install(str(wheel), *group("tests"))
    # Again without the installer's shortcut: under `nox -R` (no installs) a
    # reused venv still gets this checkout's wheel, and a rebuilt wheel of an
    # unchanged version is not taken as already installed.
    python = str(Path(session.bin) / "python")
    if session.venv_backend == "uv":
        reinstall = ["uv", "pip", "install", "--python", python, "--reinstall"]
    else:
        reinstall = [python, "-m", "pip", "install", "--force-reinstall"]
    session.run(*reinstall, "--quiet", "--no-deps", str(wheel), external=True)
    env = {
        "PYTHONASYNCIODEBUG": "1",
        "PYTHONDEVMODE": "1",
        # `-m` would put the checkout first on sys.path and test the source
        # tree instead of the wheel.
        "PYTHONSAFEPATH": "1",
        "OPENAI_RUNS_TEST_INSTALLED": "1",
    }
    pytest = ["pytest", "-p", "no:cacheprovider"]
    if session.posargs:  # what the caller names, as named
        runs = [[*pytest, *session.posargs]]
    else:
        # Every test but the timing ones on one pytest-xdist worker per core,
        # then the timing ones (marked in tests/conftest.py) in one process.
        runs = [[*pytest, "-n", "auto", "-m", "not serial"], [*pytest, "-m", "serial"]]
    if not coverage:
        for run in runs:
            session.run(*run, env=env)
        return
    # coverage run, not pytest-cov: our pytest11 plugin imports the package
    # before pytest-cov would start measuring.
    session.run("coverage", "erase")
    for run in runs:
        session.run("coverage", "run", "-m", *run, env=env)
    session.run("coverage", "combine", "--quiet")
    # A partial run (a file named on the command line) covers part of the
    # package, so only a full run is held to the threshold.
    session.run("coverage", "report", *(["--fail-under=0"] if session.posargs else []))


@nox.session
def docs(session: nox.Session) -> None:
    session.install("-e", ".", *group("docs"))
    site = f"{session.create_tmp()}/site"
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        site,
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".", *group("bench"))
    session.run("python", "tests/bench/bench.py", *session.posargs)


@nox.session(name="scale-out")
def scale_out(session: nox.Session) -> None:
    # Four worker processes on one key against `serve --rate-limit 200`, with
    # and without a shared RedisBudget (needs redis-server):
    # nox -s scale-out -- [--workers 4] [--runs 1000] [--json PATH]
    session.install("-e", ".", *group("bench"))
    session.run("python", "tests/bench/scale_out.py", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    # Thousands of watches under faults for minutes: nox -s soak -- --duration 60
    session.install("-e", ".")
    session.run("python", "tests/soak/soak.py", *session.posargs)


@nox.session
def deep(session: nox.Session) -> None:
    # The property tests with many more generated examples: nox -s deep
    session.install("-e", ".", *group("tests"))
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "tests/test_models.py",
        "--timeout=1800",  # many more examples than the default limit allows for
        *session.posargs,
        env={"OPENAI_RUNS_HYPOTHESIS_EXAMPLES": "200"},
    )
