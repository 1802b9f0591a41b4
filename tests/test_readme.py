"""The README is the interface spec: its commands and its notebook session must work as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import plotly.graph_objects as go

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_notebook_session_runs_without_a_server(monkeypatch):
    monkeypatch.chdir(ROOT)
    (session,) = _blocks("python")
    namespace: dict = {}
    exec(compile(session, "README.md", "exec"), namespace)
    summary = namespace["summary"]
    assert list(summary["feature"]) and {"ci_low", "ci_high", "q_value"} <= set(summary.columns)
    assert summary["prevalence_pct"].between(1, 60).all()
    figures, scatter_points, ds = namespace["figures"], namespace["scatter_points"], namespace["ds"]
    assert isinstance(figures.impact_figure(summary), go.Figure)
    assert isinstance(
        figures.scatter_figure(scatter_points(ds, confidence=0.5, features=summary["feature"])), go.Figure
    )
    adjusted = namespace["adjusted"]
    assert list(adjusted["feature"]) == list(summary["feature"])
    assert adjusted["adjusted_p_value"].notna().any()
    assert len(namespace["cooccurring"](ds, "girl", confidence=0.5))


def test_readme_notebook_imports_pull_in_no_dash_or_flask():
    code = "import sys; from data import analysis; from dashboard import figures; print(sorted({'dash', 'flask'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt -c constraints.txt"
        " && .venv/bin/python -m pytest" in README
    )
    assert "pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt" in ci
    assert "\n.venv/bin/python -m pytest\n" in ci
    # After the suite: the package installed into a fresh venv runs the notebook block elsewhere.
    after = ci.split("\n.venv/bin/python -m pytest\n", 1)[1]
    assert 'pip" install -q --disable-pip-version-check -c constraints.txt .' in after
    assert 'cd "$installed" && venv/bin/python notebook.py' in after


def test_readme_cli_loads_the_sample_csv(tmp_path):
    (line,) = [text for text in README.splitlines() if "python -m ingest csv" in text]
    args = line.split("python -m ingest ", 1)[1]
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    out = subprocess.run(
        f"{sys.executable} -m ingest {args}", shell=True, cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "287" in out.stdout


def _pins(path: Path) -> dict[str, str]:
    """name -> version of each ``name==version`` line (names normalised as pip does)."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"{path.name}: {line!r} is not pinned with =="
        pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version
    return pins


def test_constraints_pin_every_requirement_at_its_version():
    constraints = _pins(ROOT / "constraints.txt")
    wanted = {**_pins(ROOT / "requirements.txt"), **_pins(ROOT / "requirements-dev.txt")}
    assert {name: constraints.get(name) for name in wanted} == wanted
    assert len(constraints) > len(wanted)  # the transitive dependencies too


def _file_list() -> list[str]:
    section = README.split("\n## Files\n", 1)[1]
    block = re.search(r"```\n(.*?)```", section, flags=re.S).group(1)
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def test_readme_file_list_names_files_that_exist_and_every_dashboard_module():
    listed = _file_list()
    missing = [name for name in listed if not any(ROOT.glob(name.rstrip("/")))]
    assert missing == []
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "dashboard").rglob("*.py") if p.name != "__init__.py"}
    rooms = {
        p.relative_to(ROOT).as_posix() + "/" for p in (ROOT / "dashboard").iterdir() if (p / "__init__.py").exists()
    }
    assert modules - set(listed) == set() and rooms - set(listed) == set()
