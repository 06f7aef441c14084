"""What users install: the wheel holds every module, and a non-editable install works from
anywhere (not only from this checkout, where an editable install would hide missing files)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("optimizer", "backends")
IGNORED = shutil.ignore_patterns("__pycache__", "build", "dist", "*.egg-info", ".git", ".hypothesis", "results",
                                 ".pytest_cache", ".venv")


def shipped_files() -> set[str]:
    """Every module and data file of the packages, relative to the repository root."""
    out = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in (".py", ".toml", ".json"):
                out.add(path.relative_to(REPO).as_posix())
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(REPO, src, ignore=IGNORED)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(work / "dist"), str(src)], check=True, capture_output=True, text=True, timeout=300)
    (found,) = (work / "dist").glob("qfreight-*.whl")
    return found


def test_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(shipped_files() - names)
    assert not missing, f"missing from the wheel: {missing}"
    assert "backends/qaoa/solver.py" in names and "backends/photonic/solver.py" in names


def test_non_editable_install_runs_every_backend(wheel, tmp_path):
    # A venv that sees the already installed dependencies, with qfreight itself from the wheel.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True, text=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()

    def run(*args: str) -> str:
        proc = subprocess.run([str(env_dir / "bin" / "qfreight"), *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    # The checkout's editable install stays visible through the system site-packages, so check
    # where every subpackage is imported from: a package missing from the wheel would come from the
    # checkout and hide the broken install.
    subpackages = sorted({Path(f).parent.as_posix().replace("/", ".") for f in shipped_files() if f.endswith(".py")})
    code = "import importlib\n" + "".join(f"print(importlib.import_module({m!r}).__file__)\n" for m in subpackages)
    where = subprocess.run([str(py), "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                           check=True).stdout.split()
    outside = [w for w in where if not Path(w).is_relative_to(env_dir)]
    assert not outside, f"imported from outside the installed wheel: {outside}"
    assert run("--version").strip().startswith("qfreight ")
    listing = run("backends")
    rows = [line for line in listing.splitlines()[1:] if line.strip()]
    assert {line.split()[0] for line in rows} >= {"exact", "anneal", "cpsat", "qaoa", "photonic"}
    for line in rows:
        assert line.split()[1] == "yes", line
        assert "error" not in line, line
