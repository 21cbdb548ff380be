"""Parameter types for the command line: each checks its value and says how to fix it."""

from __future__ import annotations

import re
from typing import Any

import click

from .._errors import UsageError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "ki": 1024, "m": 1000**2,
          "mb": 1000**2, "mib": 1024**2, "mi": 1024**2, "g": 1000**3, "gb": 1000**3,
          "gib": 1024**3, "gi": 1024**3}  # fmt: skip


class RateType(click.ParamType):  # type: ignore[type-arg]
    name = "RATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from .._engine.limits import parse_rate  # loaded when a rate is given

        try:
            rate = float(value) if re.fullmatch(r"\d+(\.\d+)?", str(value)) else str(value)
            parse_rate(rate, name=param.name if param else "rate")
        except UsageError:
            self.fail(f"{value!r} is not a rate: write it like 20/s, 600/min or 5 (per second)")
        return rate


class SizeType(click.ParamType):  # type: ignore[type-arg]
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        match = _SIZE.match(str(value))
        if not match:
            self.fail(f"{value!r} is not a size: write it like 50MiB, 200kB or 1048576")
        number, unit = match.groups()
        return int(float(number) * _UNITS[(unit or "").lower()])


class HeaderType(click.ParamType):  # type: ignore[type-arg]
    name = "'NAME: VALUE'"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        name, sep, content = str(value).partition(":")
        if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
            self.fail(f"{value!r} is not a header: write it like --header 'Accept: text/html'")
        return name.strip(), content.strip()


class TargetType(click.ParamType):  # type: ignore[type-arg]
    """``module:function`` for ``--process``."""

    name = "MODULE:FUNCTION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        module, sep, function = str(value).partition(":")
        if not sep or not module or not function.isidentifier():
            self.fail(f"{value!r}: write it as module:function, e.g. --process mypkg.score:score")
        return value


class LoopsType(click.ParamType):  # type: ignore[type-arg]
    """``--loops``: a whole number of at least 1, or ``auto``."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if not text.isdigit() or int(text) < 1:
            self.fail(f"{value!r}: give a number of loops (1, 2, ...) or auto")
        return int(text)


RATE = RateType()
LOOPS = LoopsType()
SIZE = SizeType()
HEADER = HeaderType()
TARGET = TargetType()
