"""The install is quiet: setuptools' own build of the package prints no warning.

`pip install -e .` (and so `make demo`) runs the same `build_py` this test runs; an unlisted
folder of Python files (as `swarmsync.db.migrations` was) costs a newcomer ~40 lines of
"Package would be ignored" per folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _source_folder(package: str) -> Path:
    """Where setuptools reads `package` from, through `package-dir`."""
    mapping = CONFIG["package-dir"]
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        if head in mapping:
            return ROOT / mapping[head] / Path(*parts[cut:])
    return ROOT / Path(*parts)


def test_every_folder_of_python_files_is_a_listed_package() -> None:
    listed = set(CONFIG["packages"])
    roots = {package: _source_folder(package) for package in listed if package.count(".") <= 1}
    found = set()
    for package, folder in roots.items():
        for sub in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
            if "__pycache__" in sub.parts or not any(sub.glob("*.py")):
                continue
            found.add(".".join([package, *sub.relative_to(folder).parts]))
    assert found - listed == set(), f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
    assert listed - found == set(), f"listed in pyproject.toml but holding no Python file: {sorted(listed - found)}"


def test_building_the_package_prints_no_warning(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in {Path(p).parts[0] for p in [*CONFIG["package-dir"].values()]}:
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", "out"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    noise = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert noise == [], "setuptools printed:\n" + "\n".join(noise[:40])
    assert (tmp_path / "out/swarmsync/db/migrations/script.py.mako").is_file()
    assert (tmp_path / "out/swarmsync/db/migrations/versions/0001_archive_index.py").is_file()
