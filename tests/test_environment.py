"""The pins of requirements.txt and environment.yml are the same, and the installed versions are those pins."""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, sep, ver = line.partition("==")
            assert sep, f"unpinned requirement {line!r}"
            pins[name.strip().lower()] = ver.strip()
    return pins


def test_requirements_and_environment_yml_agree():
    req = _pins((REPO / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip_block) == req
    assert "python=3.11" in env["dependencies"]


def test_installed_versions_are_the_pins():
    for name, pinned in _pins((REPO / "requirements.txt").read_text().splitlines()).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            raise AssertionError(f"{name} is pinned but not installed") from None
        assert installed.split("+")[0] == pinned, f"{name}: installed {installed}, pinned {pinned}"


def test_user_requested_top_level_exists():
    for path in ["repro", "models", "baselines", "kernels", "results", "tables", "Snakefile", "environment.yml"]:
        assert (REPO / path).exists(), path
