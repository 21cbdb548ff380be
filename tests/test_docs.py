"""The map stays true: every file, module member and ``Class.member`` that
``docs/architecture.md`` names exists in the code.

Text drifts where it describes a neighbour; this catches the part of the drift a machine
can see: a module moved or renamed, a class or method gone.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "conveyor"
DOCS = ("docs/architecture.md",)

_CODE = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"^[\w./-]+\.(?:py|md|toml|txt)$|^[\w-]+(?:/[\w.-]+)+/?$")
_DOTTED = re.compile(r"^([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\(\))?$")
_CAMEL = re.compile(r"^[A-Z][a-z]+[A-Z]\w*$")
# Names from outside conveyor the docs may cite as they are.
_OUTSIDE = {"ThreadPoolExecutor", "TaskGroup", "BaseException", "CancelledError", "ClientSession"}
_FILE_TYPES = {"json", "py", "md", "txt", "toml", "jsonl", "csv", "parquet", "db"}
_OUTSIDE_MODULES = {"asyncio", "os", "time", "sys", "pickle", "multiprocessing", "socket"}


@cache
def _definitions() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per class name, the members its bodies define (methods, attributes, self.x
    assignments); per module name (file stem, or package name), its top-level names."""
    members: dict[str, set[str]] = defaultdict(set)
    modules: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        stem = path.parent.name if path.name == "__init__.py" else path.stem
        for node in tree.body:
            modules[stem].update(_names_of(node))
            if isinstance(node, ast.ClassDef):
                members[node.name].update(_class_members(node))
    return members, modules


def _names_of(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    if isinstance(node, ast.ImportFrom | ast.Import):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return set()


def _class_members(node: ast.ClassDef) -> set[str]:
    found: set[str] = set()
    for item in node.body:
        found |= _names_of(item)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
            if sub.value.id == "self" and isinstance(sub.ctx, ast.Store):
                found.add(sub.attr)
    return found


def _cited(doc: str) -> list[str]:
    return _CODE.findall((ROOT / doc).read_text(encoding="utf-8"))


def _path_exists(text: str) -> bool:
    text = text.rstrip("/")
    bases = (ROOT, ROOT / "src", PACKAGE, ROOT / "docs")
    return any((base / text).exists() for base in bases)


@pytest.mark.parametrize("doc", DOCS)
def test_every_file_the_doc_names_exists(doc: str) -> None:
    missing = [t for t in _cited(doc) if _PATH.match(t) and "/" in t and not _path_exists(t)]
    assert not missing, f"{doc} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_member_the_doc_names_exists(doc: str) -> None:
    members, modules = _definitions()
    missing = []
    for text in _cited(doc):
        match = _DOTTED.match(text)
        if match is None or _PATH.match(text):
            continue
        owner, name = match.groups()
        if name in _FILE_TYPES or owner in _OUTSIDE_MODULES or owner in _OUTSIDE:
            continue  # a file name (progress.json), or a name from outside conveyor
        if owner == "conveyor":  # a public module, conveyor.http
            if not (PACKAGE / f"{name}.py").exists() and not (PACKAGE / name).is_dir():
                missing.append(text)
            continue
        if owner in members:
            known = members[owner]
        elif owner in modules:
            known = modules[owner]
        else:
            missing.append(f"{text} ({owner} is no class or module of conveyor)")
            continue
        if name not in known:
            missing.append(text)
    assert not missing, f"{doc} names members that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_class_the_doc_names_exists(doc: str) -> None:
    members, modules = _definitions()
    defined = set(members) | {n for names in modules.values() for n in names}
    missing = [t for t in _cited(doc) if _CAMEL.match(t) and t not in defined and t not in _OUTSIDE]
    assert not missing, f"{doc} names classes that do not exist: {missing}"


def test_the_checks_see_a_drifted_name() -> None:
    members, modules = _definitions()
    assert "fusible" in members["StageRunner"]
    assert "nowhere" not in members["StageRunner"]
    assert "fold_head" in modules["loops"]
    assert _path_exists("_engine/stages.py")
    assert not _path_exists("_engine/nowhere.py")
