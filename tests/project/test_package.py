"""The distribution: `python -m build` makes an sdist and a wheel; the wheel
holds the package and its metadata and nothing else (no tests, caches,
checkpoints or corpora), and installed into a fresh virtual environment it
runs `charrnn --version`, trains, samples and exports a page."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import charrnn

from helpers import ROOT

PACKAGE_MODULES = sorted(p.relative_to(ROOT / "charrnn").as_posix()
                         for p in (ROOT / "charrnn").rglob("*.py"))
# Files the package reads at run time (setup.cfg's package_data, MANIFEST.in)
PACKAGE_DATA = ["views/export_page.html"]
# Messages of pip / build when the package index (for setuptools, or for
# numpy in the fresh venv) cannot be reached: the test is skipped, not failed.
OFFLINE_SIGNS = ("No matching distribution found", "Could not find a version",
                 "Failed to establish a new connection", "Temporary failure in name resolution",
                 "Network is unreachable", "ConnectionError", "ReadTimeoutError")


def _offline(output: str) -> bool:
    return any(sign in output for sign in OFFLINE_SIGNS)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "CHARRNN_DEBUG", "CHARRNN_CHECKPOINT_DIR")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist and wheel built as a user would: `python -m build` (the wheel is
    built from the sdist, so this also proves the sdist is complete)."""
    pytest.importorskip("build", reason="needs the 'build' package (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                       capture_output=True, text=True, env=_env(), timeout=300)
    if r.returncode != 0 and _offline(r.stdout + r.stderr):
        pytest.skip("python -m build could not fetch setuptools: package index unreachable")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


def _one(folder: Path, pattern: str) -> Path:
    found = list(folder.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {folder}, found {found}"
    return found[0]


def wheel_problems(names: list[str], version: str) -> list[str]:
    """What is wrong with a wheel's file list: anything but charrnn's own
    modules and its .dist-info, or a module missing."""
    info = f"charrnn-{version}.dist-info/"
    problems = []
    for name in names:
        if name.startswith(info):
            continue
        parts = name.split("/")
        if name[len("charrnn/"):] in PACKAGE_DATA and parts[0] == "charrnn":
            continue
        if (parts[0] != "charrnn" or not name.endswith(".py") or "__pycache__" in parts
                or name[len("charrnn/"):] not in PACKAGE_MODULES):
            problems.append(f"{name}: does not belong in the wheel (only charrnn's own "
                            f"modules and {info})")
    for module in PACKAGE_MODULES + PACKAGE_DATA:
        if f"charrnn/{module}" not in names:
            problems.append(f"charrnn/{module}: missing from the wheel")
    for needed in ("METADATA", "WHEEL", "RECORD", "entry_points.txt"):
        if info + needed not in names:
            problems.append(f"{info}{needed}: missing")
    if not any(n.startswith(info) and n.endswith("LICENSE") for n in names):
        problems.append("the LICENSE file is missing from the wheel")
    return problems


def test_wheel_holds_the_package_and_metadata_only(dist):
    wheel = _one(dist, "charrnn-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = Parser().parsestr(z.read(f"charrnn-{charrnn.__version__}.dist-info/METADATA")
                                 .decode("utf-8"))
        entry_points = z.read(f"charrnn-{charrnn.__version__}.dist-info/entry_points.txt").decode()
    assert wheel_problems(names, charrnn.__version__) == []
    assert "charrnn = charrnn.launch:main" in entry_points
    assert meta["Name"] == "charrnn" and meta["Version"] == charrnn.__version__
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["License"] == "MIT"
    classifiers = meta.get_all("Classifier")
    for c in ("License :: OSI Approved :: MIT License", "Operating System :: OS Independent",
              "Environment :: Console", "Topic :: Scientific/Engineering :: Artificial Intelligence",
              "Programming Language :: Python :: 3.10", "Programming Language :: Python :: 3.13"):
        assert c in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert meta["Keywords"]
    requires = sorted(r.split(">")[0].split("=")[0] for r in meta.get_all("Requires-Dist")
                      if "extra ==" not in r)
    assert requires == ["click", "numpy", "tqdm"]
    assert "# charrnn" in meta.get_payload()          # the README is the long description


def test_wheel_check_catches_strays():
    """The file-list check itself: strays and a missing module are reported."""
    good = [f"charrnn/{m}" for m in PACKAGE_MODULES + PACKAGE_DATA] + [
        f"charrnn-0.1.0.dist-info/{n}" for n in
        ("METADATA", "WHEEL", "RECORD", "entry_points.txt", "licenses/LICENSE")]
    assert wheel_problems(good, "0.1.0") == []
    bad = [n for n in good if n not in ("charrnn/cli/commands.py",
                                        "charrnn/views/export_page.html")] + [
        "tests/cli/test_cli.py", "charrnn/cli/__pycache__/commands.cpython-311.pyc",
        "checkpoints/best.npz",
        "corpora/tinyshakespeare.txt", ".venv/bin/python"]
    problems = "\n".join(wheel_problems(bad, "0.1.0"))
    for stray in ("tests/cli/test_cli.py", "__pycache__", "best.npz", "tinyshakespeare", ".venv",
                  "charrnn/cli/commands.py: missing",
                  "charrnn/views/export_page.html: missing"):
        assert stray in problems


def test_sdist_has_sources_license_and_tests_but_no_caches(dist):
    sdist = _one(dist, "charrnn-*.tar.gz")
    with tarfile.open(sdist) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    for needed in ["LICENSE", "README.md", "setup.cfg", "pyproject.toml", "tests/conftest.py",
                   "CONTRIBUTING.md", "bench/README.md", "docs/cli.md"] + [
            f"charrnn/{m}" for m in PACKAGE_MODULES + PACKAGE_DATA]:
        assert needed in names, f"{needed} missing from the sdist"
    for name in names:
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
        assert not name.endswith(".npz") or name.startswith("tests/data/"), name
        assert not name.startswith((".venv", "checkpoints/", "corpora/", "build/", "dist/")), name


def test_wheel_installs_into_a_fresh_venv_and_runs(dist, tmp_path):
    """pip install of the wheel alone into a new venv, then the console script
    from that venv: --version, a few training iterations and a sample."""
    wheel = _one(dist, "charrnn-*-py3-none-any.whl")
    env_dir = tmp_path / "venv"
    try:
        venv.EnvBuilder(with_pip=True).create(env_dir)
    except subprocess.CalledProcessError as e:      # e.g. a Python built without ensurepip
        pytest.skip(f"cannot create a virtual environment with pip: {e}")
    py = env_dir / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True,
                       text=True, env=_env(), timeout=300, cwd=tmp_path)
    if r.returncode != 0 and _offline(r.stdout + r.stderr):
        pytest.skip("pip could not fetch numpy/click/tqdm: package index unreachable")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    exe = env_dir / "bin" / "charrnn"

    def run(*args):
        return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                              env=_env(), timeout=120, cwd=tmp_path)

    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"charrnn, version {charrnn.__version__}"
    where = subprocess.run([str(py), "-c", "import charrnn; print(charrnn.__file__)"],
                           capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert str(env_dir) in where.stdout, "the venv imported charrnn from elsewhere"
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. the dog sat on the log.\n" * 60, encoding="utf-8")
    r = run("train", text, "--hidden-size", 16, "--seq-len", 8, "--batch-size", 4,
            "--max-iters", 20, "--eval-every", 10, "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "checkpoints" / "latest.npz").exists()
    r = run("sample", "--len", 50, "--seed", 1, "--prime", "the ")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("the ") and len(r.stdout) == len("the ") + 50 + 1
    assert set(r.stdout[:-1]) <= set(text.read_text())
    r = run("export", "model.html")            # its page template is package data
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "model.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
