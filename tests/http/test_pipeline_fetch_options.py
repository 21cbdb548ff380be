"""``Pipeline.fetch`` takes every ``FetchConfig`` option as a typed keyword argument."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor._errors import UsageError
from conveyor.http import FetchConfig

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {f.name: f for f in dataclasses.fields(FetchConfig)}


def test_fetch_signature_has_every_fetch_config_option_with_its_default() -> None:
    parameters = dict(inspect.signature(conveyor.Pipeline.fetch).parameters)
    del parameters["self"]
    assert set(parameters) == {*FIELDS, "name"}
    for name, parameter in parameters.items():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameter.annotation is not inspect.Parameter.empty, name
        assert name in (conveyor.Pipeline.fetch.__doc__ or ""), f"{name} is not documented"
        if name != "name":
            assert parameter.default == FIELDS[name].default, name
    assert parameters["name"].default == "fetch"


def test_fetch_hands_every_option_to_fetch_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def coerce(cls: type[FetchConfig], config: None, options: dict[str, Any]) -> FetchConfig:
        seen.append(dict(options))
        return FetchConfig()

    monkeypatch.setattr(FetchConfig, "coerce", classmethod(coerce))
    given = {name: object() for name in FIELDS}
    pipeline = conveyor.Pipeline([]).fetch(**given, name="get")
    assert seen == [given]
    assert pipeline.stages[-1].name == "get"
    conveyor.Pipeline([]).fetch()
    assert seen[-1] == {name: f.default for name, f in FIELDS.items()}


def test_a_wrong_value_names_the_option_at_build_time() -> None:
    with pytest.raises(UsageError, match="per_host"):
        conveyor.Pipeline([]).fetch(per_host=0)


def test_a_misspelt_option_fails_in_python_and_in_a_dict_gets_a_hint() -> None:
    with pytest.raises(TypeError, match="concurency"):
        conveyor.Pipeline([]).fetch(concurency=5)  # type: ignore[call-arg]
    with pytest.raises(UsageError, match="did you mean concurrency="):
        FetchConfig.coerce(None, {"concurency": 5})


SNIPPET = """
import conveyor

ok = conveyor.Pipeline([]).fetch(concurrency=5, rate="2/s", name="get").map(str, on="threads")
typo = conveyor.Pipeline([]).fetch(concurency=5)
wrong = conveyor.Pipeline([]).fetch(retries="3")
place = conveyor.Pipeline([]).map(str, on="thread")
"""


def test_mypy_catches_a_misspelt_or_mistyped_option(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-error-summary",
         "--show-error-codes", "--cache-dir", str(tmp_path / "cache"),
         "-c", textwrap.dedent(SNIPPET)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "MYPYPATH": str(ROOT / "src")},
    )  # fmt: skip
    errors = [line for line in result.stdout.splitlines() if line.startswith("<string>:")]
    errors = [line for line in errors if ": error:" in line]
    assert [e.split(":")[1] for e in errors] == ["5", "6", "7"], result.stdout + result.stderr
    assert '"concurency"' in errors[0]
    assert "[call-arg]" in errors[0]
    assert "[arg-type]" in errors[1]
    assert "[arg-type]" in errors[2]


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("min_rate", 0, "min_rate=0"),
        ("min_rate", "fast", "min_rate='fast'"),
        ("max_pause", -1, "max_pause=-1"),
        ("adapt", "yes", "adapt='yes'"),
        ("refuse_403", 1, "refuse_403=1"),
    ],
)
def test_the_politeness_options_are_checked(option: str, value: object, named: str) -> None:
    with pytest.raises(UsageError, match=re.escape(named)):
        FetchConfig(**{option: value})


def test_the_politeness_options_have_their_defaults() -> None:
    config = FetchConfig()
    assert (config.adapt, config.refuse_403, config.min_rate, config.max_pause) == (
        True,
        False,
        1024.0,
        86400.0,
    )
    assert FetchConfig(min_rate=None).min_rate is None
