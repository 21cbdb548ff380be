"""The public face stays honest, and imports point one way down the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import conveyor

PACKAGE = Path(conveyor.__file__).parent

# Each layer may import only the layers listed for it (and itself, and _errors).
ALLOWED = {
    "_engine": set(),
    "_io": {"_engine"},
    "_http": {"_engine"},
    "_pipeline": {"_engine", "_io", "_http"},
    "_observe": {"_engine", "_pipeline"},
    "_cli": {"_engine", "_io", "_http", "_pipeline", "_observe", "testing"},
    "_backends": {"_engine", "_pipeline", "_io"},
    "testing": set(),
}


def test_all_is_sorted_and_names_report_the_public_module() -> None:
    assert conveyor.__all__ == sorted(conveyor.__all__)
    for name in conveyor.__all__:
        obj = getattr(conveyor, name)
        module = getattr(obj, "__module__", "conveyor")
        assert module == "conveyor" or not module.startswith("conveyor."), name


def _imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    layer_parts = path.relative_to(PACKAGE).parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = list(layer_parts[:-1])[: len(layer_parts) - node.level]
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.startswith("conveyor."):
                target = node.module.split(".")[1:]
            else:
                continue
            if target:
                found.add(target[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("conveyor."):
                    found.add(alias.name.split(".")[1])
    return found


def test_imports_point_one_way() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        layer = parts[0]
        if layer not in ALLOWED:
            continue
        used = _imported_layers(path) - {layer, "_errors", "__init__.py"}
        problems.extend(
            f"{'/'.join(parts)} imports {u}"
            for u in used
            if u in ALLOWED and u not in ALLOWED[layer]
        )
    assert not problems, problems


def test_engine_knows_nothing_of_http_files_or_terminals() -> None:
    banned = {"aiohttp", "rich", "click", "orjson", "sqlite3", "pyarrow"}
    for path in (PACKAGE / "_engine").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module.split(".")[0]]
            assert not set(names) & banned, f"{path.name} imports {set(names) & banned}"
