"""Per-shard work: the units of work of the curate stage, as pure functions over records and Arrow batches.

"Tasks" here means units of work (read a WARC shard, decode, extract, filter, MinHash, dedup), not
Prefect tasks: nothing in this package imports Prefect, Ray or ``kurate.flows``. The flows wrap
these functions in Prefect tasks and Ray tasks (``flows/runner.py``); see docs/ARCHITECTURE.md,
"Layers".
"""
