"""Prefect flows (one per stage, plus ``pipeline``) and the ``kurate`` CLI.

Prefect's settings are read at import time, so the defaults we rely on are set here first:
a temporary server can take ~30 s to start on a small machine, and analytics stay off.
"""

import os

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.5")
