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
    "Event", "Failure", "FetchConfig", "FetchError", "FetchTimeout", "HttpClient", "ItemError",
    "ItemFailed", "ItemFinished", "ItemRetrying", "ItemStarted", "ItemTimeout",
    "JobMismatchError", "JournalError", "JsonLines", "KeyOutcome", "Ledger",
    "NotPicklableError", "Observer", "Parquet", "Pipeline", "Progress", "Request", "Response",
    "Retry", "RunFinished", "RunInterrupted", "RunReport", "RunResult", "RunStarted",
    "RunStatistics", "ShardFailed", "ShardFenced", "Sink", "SinkError", "Sqlite",
    "StageStatistics", "Tick", "UsageError", "WorkerCrashed", "read_csv", "read_jsonl",
    "read_lines", "read_parquet", "sink_for", "to_record",
]  # fmt: skip
PUBLIC_HTTP = [
    "BadURL", "Blocked", "ConnectError", "ConnectionReset", "DNSError", "DecodeError",
    "FetchConfig", "FetchError", "FetchTimeout", "HttpClient", "HttpStats", "ProxyError",
    "Request", "Response", "TLSError", "TooLarge", "TooManyRedirects", "fetch",
]  # fmt: skip

# The package face (``conveyor/__init__.py``, ``conveyor.http``): it imports every layer, so
# only the top layer, the command line, may import it.
FACE = "conveyor"
# Modules any layer may import: the error tree and the version.
ANYWHERE = {"_errors", "_version"}
# Each layer may import only the layers listed for it (and itself, and ANYWHERE).
ALLOWED = {
    "_engine": set(),
    "_io": {"_engine"},
    "_http": {"_engine"},
    "_crawl": {"_engine", "_http"},
    "_shards": {"_engine", "_io"},
    "_pipeline": {"_engine", "_io", "_http", "_crawl", "_shards"},
    "_observe": {"_engine", "_pipeline"},
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


def _top(parts: list[str], names: list[str]) -> set[str]:
    """The layers an import of ``parts`` (a path inside the package) reaches.

    The package root resolves to the face, except for the names imported from it that are
    modules of their own (``from .. import _io`` reaches ``_io``); ``conveyor.http`` is part
    of the face too.
    """
    if parts:
        return {FACE if parts[0] == "http" else parts[0]}
    found = {FACE} if not names else set()  # import conveyor
    for name in names:
        module = PACKAGE / name
        is_module = module.is_dir() or module.with_suffix(".py").exists()
        found.add(name if is_module and name != "http" else FACE)
    return found


def _imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    layer_parts = path.relative_to(PACKAGE).parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:  # relative: resolve against this file's package
                base = list(layer_parts[:-1])[: len(layer_parts) - node.level]
                found |= _top([*base, *(node.module.split(".") if node.module else [])], names)
            elif node.module and node.module.split(".")[0] == "conveyor":
                found |= _top(node.module.split(".")[1:], names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "conveyor":
                    found |= _top(alias.name.split(".")[1:], [])
    return found


def test_layering_test_resolves_package_root_imports() -> None:
    assert _top([], ["Pipeline", "__version__"]) == {FACE}
    assert _top([], ["_io", "_errors"]) == {"_io", "_errors"}
    assert _top([], []) == {FACE}
    assert _top(["http"], ["HttpClient"]) == {FACE}
    assert _top(["_http", "config"], ["FetchConfig"]) == {"_http"}


def test_imports_point_one_way() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        layer = parts[0]
        if layer not in ALLOWED:
            continue
        used = _imported_layers(path) - {layer} - ANYWHERE
        problems.extend(
            f"{'/'.join(parts)} imports {u}" for u in sorted(used) if u not in ALLOWED[layer]
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
