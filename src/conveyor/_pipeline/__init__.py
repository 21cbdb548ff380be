"""The public builder and its run and iteration faces (the composition root)."""
