"""A job run as shards on a Ray cluster: the one driver, and everything it writes.

- ``driver``: ``run_sharded``, the driver of ``Pipeline.run(backend="ray")`` and of
  ``conveyor fetch --backend ray``, given a ``ShardedJob`` (it never imports the builder);
- ``task``: one shard's Ray task, its per-shard hook (``ShardHook``) and ``progress.json``;
- ``plan``: the plan (slices, fingerprint) and the manifest;
- ``slices``: cutting the source by route key, and reading a slice back;
- ``fence``: attempts and the fence that stops a replaced one;
- ``layout``: where each file lives, and which files are the job's (``clear``);
- ``progress``: what the driver reads of running shards, and their results added up;
- ``parts``: reading parts back, and ``conveyor merge``;
- ``ray_backend``: the only module that imports Ray, and only when a job runs.

A layer below ``_pipeline`` and ``_cli`` and beside ``_http`` and ``_io``: it imports only
``_engine`` and ``_io`` (see ``docs/scale.md``).
"""
