"""The public face stays honest, and imports point one way down the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import conveyor
import conveyor.http

PACKAGE = Path(conveyor.__file__).parent

# The public names, pinned: one that vanishes or appears is a change to the API, made here
# on purpose.
PUBLIC = [
    "BadURL", "Blocked", "ConnectError", "ConnectionReset", "ConveyorError", "Csv", "DNSError",
    "Deferred", "Event", "Failure", "FetchConfig", "FetchError", "FetchTimeout", "HttpClient",
    "ItemError", "ItemFailed", "ItemFinished", "ItemRetrying", "ItemStarted", "ItemTimeout",
    "JobMismatchError", "JournalError", "JsonLines", "KeyOutcome", "Ledger",
    "NotPicklableError", "Observer", "Page", "Parquet", "Pipeline", "Progress", "Request",
    "Response", "Retry", "RunFinished", "RunInterrupted", "RunReport", "RunResult",
    "RunStarted", "RunStatistics", "ShardFailed", "ShardFenced", "Sink", "SinkError",
    "Sqlite", "StageStatistics", "Tick", "UsageError", "Warc", "WorkerCrashed", "crawl",
    "read_csv", "read_jsonl", "read_lines", "read_parquet", "sink_for", "to_record",
]  # fmt: skip
PUBLIC_HTTP = [
    "BadURL", "Blocked", "ConnectError", "ConnectionReset", "DNSError", "DecodeError",
    "FetchConfig", "FetchError", "FetchTimeout", "HttpClient", "HttpStats", "ProxyError",
    "Request", "Response", "TLSError", "TooLarge", "TooManyRedirects", "TooSlow", "fetch",
]  # fmt: skip

# The package face (``conveyor/__init__.py``, ``conveyor.http``): it imports every layer, so
# only the top layer, the command line, may import it.
FACE = "conveyor"
# Modules any layer may import: the error tree and the version.
ANYWHERE = {"_errors", "_version"}
# Each layer may import only what is listed for it (and itself, and ANYWHERE): a whole layer
# ("_engine"), or named modules of one and what is inside them ("_engine.ports"). The
# layers beside the builder take from the engine only its ports and the pure primitives
# docs/architecture.md names; the display reads the fetch's report type.
ALLOWED = {
    "_engine": set(),
    "_io": {"_engine.ports", "_engine.outcomes", "_engine.routing"},
    "_http": {"_engine.ports", "_engine.limits", "_engine.retry", "_engine.stall"},
    "_crawl": {"_engine", "_http.hosts", "_http.charset"},
    "_shards": {"_engine", "_io"},
    "_pipeline": {"_engine", "_io", "_http", "_crawl", "_shards"},
    "_observe": {"_engine", "_pipeline", "_http.stats"},
    "_cli": {
        "_engine",
        "_io",
        "_http",
        "_crawl",
        "_shards",
        "_pipeline",
        "_observe",
        "testing",
        FACE,
    },
    "testing": set(),
}


def test_public_names_are_pinned_and_report_the_public_module() -> None:
    assert conveyor.__all__ == PUBLIC
    for name in conveyor.__all__:
        obj = getattr(conveyor, name)
        module = getattr(obj, "__module__", "conveyor")
        assert module == "conveyor" or not module.startswith("conveyor."), name


def test_http_public_names_are_pinned() -> None:
    assert conveyor.http.__all__ == PUBLIC_HTTP
    for name in conveyor.http.__all__:
        assert getattr(conveyor.http, name) is not None, name
        if hasattr(conveyor, name):  # the same object under both names
            assert getattr(conveyor, name) is getattr(conveyor.http, name), name


def _is_module(parts: list[str]) -> bool:
    path = PACKAGE.joinpath(*parts)
    return path.is_dir() or path.with_suffix(".py").exists()


def _targets(parts: list[str], names: list[str]) -> set[str]:
    """The modules an import of ``parts`` (a path inside the package) reaches, dotted
    (``"_engine.ports"``; a layer's own name for its package).

    The package root resolves to the face, except for the names imported from it that are
    modules of their own (``from .. import _io`` reaches ``_io``); ``conveyor.http`` is part
    of the face too. A name imported from a package that is a module of it is that module
    (``from .._engine import ports`` reaches ``_engine.ports``).
    """
    if parts:
        if parts[0] == "http":
            return {FACE}
        found = {".".join([*parts, n]) for n in names if _is_module([*parts, n])}
        if len(found) < len(names):
            found.add(".".join(parts))
        return found
    found = {FACE} if not names else set()  # import conveyor
    for name in names:
        found.add(name if _is_module([name]) and name != "http" else FACE)
    return found


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    layer_parts = path.relative_to(PACKAGE).parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:  # relative: resolve against this file's package
                base = list(layer_parts[:-1])[: len(layer_parts) - node.level]
                found |= _targets([*base, *(node.module.split(".") if node.module else [])], names)
            elif node.module and node.module.split(".")[0] == "conveyor":
                found |= _targets(node.module.split(".")[1:], names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "conveyor":
                    found |= _targets(alias.name.split(".")[1:], [])
    return found


def _allowed(layer: str, target: str) -> bool:
    top = target.split(".")[0]
    if top == layer or top in ANYWHERE:
        return True
    return any(target == rule or target.startswith(rule + ".") for rule in ALLOWED[layer])


def test_layering_test_resolves_imports_to_modules() -> None:
    assert _targets([], ["Pipeline", "__version__"]) == {FACE}
    assert _targets([], ["_io", "_errors"]) == {"_io", "_errors"}
    assert _targets([], []) == {FACE}
    assert _targets(["http"], ["HttpClient"]) == {FACE}
    assert _targets(["_http", "config"], ["FetchConfig"]) == {"_http.config"}
    assert _targets(["_engine"], ["ports"]) == {"_engine.ports"}
    assert _targets(["_engine", "loops"], ["route_index"]) == {"_engine.loops"}
    assert _allowed("_http", "_engine.ports")
    assert not _allowed("_http", "_engine.loops.slots")
    assert not _allowed("_http", "_engine")  # the package's own face is not a port
    assert _allowed("_pipeline", "_engine.loops.slots")


def test_imports_point_one_way() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        layer = parts[0]
        if layer not in ALLOWED:
            continue
        problems.extend(
            f"{'/'.join(parts)} imports {target}"
            for target in sorted(_imported_modules(path))
            if not _allowed(layer, target)
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


# The crawl's pure core takes only the host identity and the page decoding from _http.
CRAWL_FROM_HTTP = {"hosts", "charset"}


def test_crawl_takes_only_hosts_and_charset_from_http() -> None:
    used = set()
    for path in (PACKAGE / "_crawl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and "_http" in node.module:
                tail = node.module.split("_http")[1].lstrip(".")
                used |= {tail} if tail else {alias.name for alias in node.names}
    assert used <= CRAWL_FROM_HTTP, used
