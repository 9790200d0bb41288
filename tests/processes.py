"""Stopping the processes tests start: each one is reaped, whatever happens.

A `subprocess.Popen` that is never waited for stays a zombie and, once garbage-collected,
raises `ResourceWarning: subprocess N is still running` (an error under our warning filter)
in whichever test happens to be running then. So every stop here ends in `wait()`: first
SIGTERM and a grace period, then SIGKILL (which nothing can ignore) and an unbounded wait.

A process started with `start_new_session=True` leads its own process group (a worker's
RQ scheduler, `chorus dev`'s children); `group=True` signals the whole group. The group is
SIGKILLed before its leader is reaped: until then the leader's pid, which names the group,
cannot be reused by an unrelated process (pid_max is often only 32768).
"""

import os
import signal
import subprocess
import time
from collections.abc import Iterable
from contextlib import suppress

Process = subprocess.Popen[bytes]

# How long a process may take to stop after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 10.0


def stop(process: Process, *, group: bool = False, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM, SIGKILL after `grace` seconds if still running, and reap."""
    stop_all([process], group=group, grace=grace)


def kill(process: Process, *, group: bool = False) -> None:
    """SIGKILL at once (a crash), and reap."""
    stop_all([process], group=group, grace=0, first=signal.SIGKILL)


def stop_all(
    processes: Iterable[Process],
    *,
    group: bool = False,
    grace: float = STOP_GRACE_SECONDS,
    first: signal.Signals = signal.SIGTERM,
) -> None:
    """Signal every process at once, give them `grace` seconds together, then kill and reap
    each. Reaping happens in `finally`: an error or Ctrl-C on the way still reaps them all."""
    processes = list(processes)
    try:
        for process in processes:
            _signal(process, first, group)
        deadline = time.monotonic() + grace
        for process in processes:
            while not _exited(process) and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        for process in processes:
            _signal(process, signal.SIGKILL, group)
            process.wait()


def _signal(process: Process, sig: signal.Signals, group: bool) -> None:
    if process.returncode is not None:
        return  # reaped already: its pid may belong to someone else by now
    if group:
        try:
            os.killpg(process.pid, sig)
            return
        except ProcessLookupError:
            pass  # not a group leader after all: signal the process itself
    with suppress(ProcessLookupError):
        os.kill(process.pid, sig)


def _exited(process: Process) -> bool:
    """Whether `process` has ended, without reaping it (WNOWAIT): see the module docstring."""
    if process.returncode is not None:
        return True
    try:
        state = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped by someone else
        return True
    return state is not None
