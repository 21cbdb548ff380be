"""The engine: runner, placement, limits, retry, outcomes and events.

It knows nothing of HTTP, files or terminals.
"""
