"""Starting, waiting for and stopping the servers the benchmarks run: one copy for all."""

import os
import signal
import socket
import subprocess
import time
from typing import IO

import httpx

Process = subprocess.Popen[bytes]
STOP_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answering(
    url: str, process: Process, output: IO[bytes], what: str, timeout: float = 30.0
) -> None:
    """Until GET `url` answers 200; raise with the server's output if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            output.seek(0)
            raise RuntimeError(f"{what} did not start:\n{output.read().decode()[-4000:]}")
        time.sleep(0.1)


def stop(process: Process) -> None:
    """SIGTERM, then SIGKILL of the process group if it is still there after STOP_SECONDS."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()  # SIGKILL cannot be ignored: reaped, never left a zombie
