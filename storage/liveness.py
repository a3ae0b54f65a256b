"""Is the process that was recording a run still alive?  (The "interrupted" rule.)

A run is `running` while its recorder writes.  If that process dies without closing the
run (SIGKILL, power cut, OOM killer), nobody else can know the run will never end, so
`Store.open` decides, for every run still marked `running`:

* recorded on **this host**: the recorder stored its pid and the process start time
  (``/proc/<pid>/stat``, so a recycled pid is not mistaken for the writer).  The run is
  interrupted when that process no longer exists, is a zombie, or started at another time.
  A run recorded by *this* process is alive only while its recorder is open.
* recorded on **another host** (a shared PostgreSQL database): pids mean nothing here, so
  the run is interrupted when its heartbeat is older than `STALE_S`.  Writers refresh the
  heartbeat every `HEARTBEAT_S` seconds even while the search is busy inside a model.

Interrupted runs keep every event that was committed, so their partial tree replays.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta
from pathlib import Path

HEARTBEAT_S = 2.0
STALE_S = 60.0
HOST = socket.gethostname()

_live_lock = threading.Lock()
#: (database, run id) of the runs this process is recording right now.
_live_runs: set[tuple[str, int]] = set()


def process_token(pid: int) -> str | None:
    """The process start time in clock ticks since boot (Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    # fields[0] is the state (3rd field of stat); starttime is the 22nd field.
    return fields[19] if len(fields) > 19 else None


def _process_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return _process_state(pid) not in ("Z", "X")


def me() -> tuple[str, int, str | None]:
    """(host, pid, start token) of this process, as recorded on the runs it writes."""
    pid = os.getpid()
    return HOST, pid, process_token(pid)


def register(database: str, run_id: int) -> None:
    with _live_lock:
        _live_runs.add((database, run_id))


def unregister(database: str, run_id: int) -> None:
    with _live_lock:
        _live_runs.discard((database, run_id))


def writer_alive(
    database: str,
    run_id: int,
    host: str | None,
    pid: int | None,
    token: str | None,
    heartbeat: datetime | None,
    now: datetime,
) -> bool:
    """Apply the rule in the module docstring to one `running` run."""
    if host == HOST and pid is not None:
        if pid == os.getpid():
            with _live_lock:
                return (database, run_id) in _live_runs
        if not pid_alive(pid):
            return False
        current = process_token(pid)
        return token is None or current is None or current == token
    return heartbeat is not None and now - heartbeat < timedelta(seconds=STALE_S)
