"""PostgreSQL (a fresh `initdb` cluster) and Redis from the Debian packages on free loopback ports, and
the waiting for and stopping of a process, for the stacks the benchmarks and the scale tests start."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(predicate, timeout: float, what: str, process: subprocess.Popen | None = None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            tail = Path(log).read_text()[-2000:] if log else ""
            raise RuntimeError(f"{what}: the process exited ({process.returncode})\n{tail}")
        time.sleep(0.3)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f}s")


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL server binary from the Debian package (not on PATH there), or None."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else shutil.which(name)


def missing_services() -> list[str]:
    """What of PostgreSQL and Redis is missing (the scale test names it; it fails under CI=true)."""
    missing = [name for name in ("initdb", "postgres") if postgres_bin(name) is None]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser")
    return missing


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: CI runs as root, so run it as the package's user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres():
    """A fresh PostgreSQL cluster on a free port; yields its postgresql+asyncpg URL."""
    base = Path(tempfile.mkdtemp(prefix="hris-pg-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", free_port()
    subprocess.run(
        _as_postgres_user(
            [postgres_bin("initdb"), "-D", str(data), "-U", "prefect", "-A", "trust", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    log = base / "postgres.log"
    server = subprocess.Popen(
        _as_postgres_user(
            [postgres_bin("postgres"), "-D", str(data), "-p", str(port), "-k", str(base)]
            + ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]
        ),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(lambda: _listening(port), 60, "PostgreSQL", server, log)
        yield f"postgresql+asyncpg://prefect@127.0.0.1:{port}/postgres"
    finally:
        stop(server)
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def redis():
    """A redis-server on a free port, nothing persisted; yields its redis:// URL."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(lambda: _listening(port), 30, "Redis", server)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(server)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
