"""pyarrow, imported only when a Parquet source or sink is used."""

from __future__ import annotations

from types import ModuleType

from .._errors import UsageError


def pyarrow_modules() -> tuple[ModuleType, ModuleType]:
    """``(pyarrow, pyarrow.parquet)``, or a UsageError that says how to install them."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise UsageError(
            f"Parquet needs pyarrow, which is not installed ({exc}); "
            "pip install 'conveyor[parquet]'"
        ) from exc
    return pyarrow, pyarrow.parquet


def pyarrow_dataset() -> ModuleType:
    pyarrow_modules()
    import pyarrow.dataset as dataset

    module: ModuleType = dataset
    return module
