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


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0,
            "d": 86400.0}  # fmt: skip


class DurationType(click.ParamType):  # type: ignore[type-arg]
    """A time span in seconds: ``30s``, ``10m``, ``2h``, ``1d`` or a number of seconds."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float):
            return float(value)
        match = _DURATION.match(str(value))
        seconds = float(match[1]) * _SECONDS[(match[2] or "").lower()] if match else 0.0
        if seconds <= 0:
            self.fail(f"{value!r} is not a duration: write it like 30s, 10m, 2h or 1d")
        return seconds


class PercentType(click.ParamType):  # type: ignore[type-arg]
    """A share of the input, as a fraction: ``99%`` (or ``0.99``) gives 0.99."""

    name = "PCT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        try:
            share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            share = -1.0
        if not 0 < share <= 1:
            self.fail(f"{value!r} is not a share of the input: write it like 99% (0% to 100%)")
        return share


class ByteRateType(click.ParamType):  # type: ignore[type-arg]
    """Bytes per second: ``1KiB/s``, ``1KiB`` (per second understood) or ``0`` (off: None)."""

    name = "SIZE/s"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int | float):
            return None if not value else float(value)
        text = str(value).strip()
        if text.lower().endswith("/s"):
            text = text[:-2]
        match = _SIZE.match(text)
        if not match:
            self.fail(f"{value!r} is not a transfer rate: write it like 1KiB/s, 500B/s, or 0 (off)")
        number, unit = match.groups()
        rate = float(number) * _UNITS[(unit or "").lower()]
        return None if rate == 0 else rate


RATE = RateType()
LOOPS = LoopsType()
SIZE = SizeType()
HEADER = HeaderType()
TARGET = TargetType()
DURATION = DurationType()
PERCENT = PercentType()
BYTE_RATE = ByteRateType()
