"""conveyor: fetch-and-process pipelines."""

__version__ = "0.1.0"
