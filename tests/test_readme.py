"""The README opens with exactly two commands, and CI runs the second one verbatim."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index("```sh")
    return lines[start + 1:lines.index("```", start)]


def test_readme_opens_with_the_main_job_and_the_test_command():
    head = (REPO / "README.md").read_text().split("```sh", 1)[0]
    assert head.strip() == "# gpuhil", "nothing but the title may come before the two commands"
    run, test = readme_commands()
    assert run.endswith("gpuhil run") and "python -m pytest" in test
    assert run.startswith("python3 -m venv") and test.startswith("python3 -m venv")


def test_ci_runs_the_readme_test_command():
    """The last step of .ci/run is the README's test command verbatim; before it only the system
    packages the browser test needs are installed (command -v ... || apt-get ...)."""
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci[-1] == readme_commands()[1]
    assert all(line.startswith("command -v ") and "apt-get install" in line for line in ci[:-1]), ci
