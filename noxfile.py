"""Development sessions: ``nox`` runs lint, typecheck, tests and docs."""

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


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


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".", *group("tests"))
    # coverage run, not pytest-cov: our pytest11 plugin imports the package
    # before pytest-cov would start measuring.
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"PYTHONASYNCIODEBUG": "1", "PYTHONDEVMODE": "1"},
    )
    session.run("coverage", "report")


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
        *session.posargs,
        env={"OPENAI_RUNS_HYPOTHESIS_EXAMPLES": "200"},
    )
