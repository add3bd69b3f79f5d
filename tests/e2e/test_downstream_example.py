"""examples/downstream, a project of its own, passes against sovd-sim installed from this
repository into a fresh virtual environment: the wheel ships the plugin and its entry point.

The environment sees the packages of the one running this test through a .pth file, so
the third-party dependencies are there at once and only sovd-sim itself is built and
installed (from a copy of the tree, leaving no build/ behind here)."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", "build", "dist", "*.egg-info", ".*_cache"
)


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_downstream_example_passes_with_sovd_sim_installed(tmp_path: Path) -> None:
    source = tmp_path / "sovd-sim"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    venv_site = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    )
    ours = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    (venv_site / "reuse-dependencies.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")

    run(python, "-m", "pip", "install", "--quiet", source, "pytest", "pytest-asyncio")
    located = run(
        python, "-c", "import sovd_sim_pytest; print(sovd_sim_pytest.__file__)", cwd=tmp_path
    )
    assert located.startswith(str(venv_site)), "the installed copy, not this tree"

    project = tmp_path / "downstream"
    shutil.copytree(ROOT / "examples" / "downstream", project, ignore=NOT_SOURCE)
    out = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)

    assert "3 passed" in out
