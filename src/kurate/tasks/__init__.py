"""Units of work: pure functions over records and Arrow batches (read WARC, decode, extract, ingest).

Nothing here imports Prefect or flows/; Ray calls these functions from flows/runner.py.
"""
