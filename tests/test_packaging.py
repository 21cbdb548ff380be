"""What pyproject.toml promises: one version, every import declared, floors and pins sane."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

import conveyor
from conveyor._version import __version__

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
PROJECT: dict[str, Any] = PYPROJECT["project"]
DEV_TOOLS = {
    "hypothesis",
    "mypy",
    "pytest",
    "pytest-asyncio",
    "pytest-timeout",
    "pytest-xdist",
    "ruff",
}


def _requirements(*extras: str) -> list[Requirement]:
    texts = list(PROJECT["dependencies"])
    for extra in extras:
        texts += PROJECT["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


def _floors_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("floors", ROOT / ".ci" / "floors.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_version_has_one_source() -> None:
    assert "version" not in PROJECT
    assert "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "src/conveyor/_version.py"
    assert conveyor.__version__ == __version__
    assert importlib.metadata.version("conveyor") == __version__


def _third_party_imports() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((ROOT / "src" / "conveyor").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top != "conveyor":
                    found.setdefault(top, path)
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_import_is_a_declared_dependency() -> None:
    declared = {_normal(r.name) for r in _requirements(*PROJECT["optional-dependencies"])}
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for module, path in _third_party_imports().items():
        names = {_normal(d) for d in distributions.get(module, [module])}
        if not names & declared:
            missing[module] = str(path.relative_to(ROOT))
    assert not missing, f"imported but not in pyproject.toml: {missing}"


def test_every_dependency_has_a_floor_and_the_floors_script_pins_each() -> None:
    runtime = _requirements(*_floors_script().EXTRAS)
    pins = _floors_script().floor_pins(PYPROJECT)
    for requirement in runtime:
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        assert floors, f"{requirement} has no >= floor"
        pin = f"{requirement.name}=={floors[0]}"
        assert any(line == pin or line.startswith(pin + ";") for line in pins), (pin, pins)
    assert len(pins) == len({_normal(r.name) for r in runtime})


def test_dev_tools_are_pinned_within_the_dev_extra() -> None:
    pins = {}
    for line in (ROOT / "constraints-dev.txt").read_text("utf-8").splitlines():
        line = line.partition("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_normal(name)] = Version(version)
    assert set(pins) == DEV_TOOLS
    dev = {_normal(r.name): r for r in _requirements("dev")}
    for name, version in pins.items():
        assert version in dev[name].specifier, (name, version, dev[name])
