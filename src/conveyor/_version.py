"""The package version, in one place: pyproject.toml reads it (hatch), and so does the code."""

__version__ = "0.1.0"
