"""Runs: scanning, jobs (one per output volume), naming, resume, executors (pool, Dask)."""
