"""Nothing a kurate driver starts outlives it for long, even after a SIGKILL (docs/ARCHITECTURE.md,
"Where things run").

A driver starts processes it cannot stop once it is killed: the temporary Prefect server, the
private Ray (GCS, raylet, and the dashboard and runtime-env agents, which Ray does not fate-share
with their parent) and Ray's task workers. ``start_watchdog()`` spawns one small process (its own
session, stdlib + psutil only) that keeps a snapshot of the driver's descendants while the driver
lives; once the driver is gone it stops every process of the last snapshot that is still the same
process (pid *and* start time, so a reused pid is never hit) and their children — SIGTERM, then
SIGKILL after a grace period — and removes the folders it was given (the private Ray's temp dir).
It stops only descendants of the driver: another Ray instance on the machine is never touched.

    python -m kurate.flows.watchdog DRIVER_PID [DIR …]     # what start_watchdog runs
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

POLL_S = 0.5  # how often the snapshot is refreshed (a process started and orphaned in between is found as a child)
GRACE_S = 5.0  # SIGTERM → SIGKILL

_started: dict[int, subprocess.Popen] = {}  # per driver pid (a forked child is a driver of its own)
_dirs: list[str] = []


def start_watchdog(cleanup_dirs: tuple[str, ...] = ()) -> None:
    """Watch this process (once per process); a later call only adds folders to remove.

    The folders are passed on the command line, so a call that adds folders after the first starts
    a second watchdog for them (cheap; both stop the same descendants)."""
    pid = os.getpid()
    new_dirs = [d for d in cleanup_dirs if d not in _dirs]
    if pid in _started and not new_dirs:
        return
    _dirs.extend(new_dirs)
    _started[pid] = subprocess.Popen(
        [sys.executable, "-m", "kurate.flows.watchdog", str(pid), *new_dirs],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the driver's process group must not stop the watchdog first
        close_fds=True,
    )


def _identity(proc) -> tuple[int, float]:
    return proc.pid, proc.create_time()


def watch(driver_pid: int, cleanup_dirs: list[str]) -> None:
    import psutil

    me = os.getpid()
    try:
        driver = psutil.Process(driver_pid)
        born = driver.create_time()
    except psutil.NoSuchProcess:
        return
    snapshot: dict[int, float] = {}
    while True:
        try:
            if driver.create_time() != born or driver.status() == psutil.STATUS_ZOMBIE:
                break
            snapshot = dict(_identity(p) for p in driver.children(recursive=True) if p.pid != me and not _is_watchdog(p))
        except psutil.NoSuchProcess:
            break
        except psutil.Error:
            pass  # a child vanished while it was listed: the next round sees the new tree
        time.sleep(POLL_S)
    _stop(snapshot, me)
    for folder in cleanup_dirs:
        shutil.rmtree(folder, ignore_errors=True)


def _is_watchdog(proc) -> bool:
    """Another watchdog of the same driver (the CLI's and the private Ray's): it has folders of its
    own to remove once it has stopped the processes, so one watchdog never stops another."""
    import psutil

    try:
        return "kurate.flows.watchdog" in proc.cmdline()
    except psutil.Error:
        return False


def _stop(snapshot: dict[int, float], me: int) -> None:
    """SIGTERM every still-living process of the snapshot and its children; SIGKILL what is left."""
    import psutil

    targets: dict[int, psutil.Process] = {}
    for pid, born in snapshot.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() != born:
                continue  # the pid was reused by an unrelated process
            targets[pid] = proc
            for child in proc.children(recursive=True):
                targets.setdefault(child.pid, child)
        except psutil.Error:
            continue
    targets.pop(me, None)
    for pid in [pid for pid, proc in targets.items() if _is_watchdog(proc)]:
        targets.pop(pid)
    for proc in targets.values():
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(targets.values()), timeout=GRACE_S)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=GRACE_S)


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2:])
