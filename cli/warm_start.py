"""The warm starter (issue 24): a CSM's Resume starts the run's engine by forking a process that has
already imported Prefect and every library the flows import, instead of a new interpreter.

`python -m cli.warm_start SOCKET` imports them (the list comes from a throwaway process that imports
the flows; the project's own modules are never imported here, so a run always loads this checkout's
code as it is now), then listens on the Unix socket SOCKET. The work pool's command is
`python -m cli.warm_run SOCKET` (cli/warm_run.py). Per request: fork a supervisor, which checks the
request, answers "ok", waits for the launcher's "go", forks the engine, forwards the launcher's
signals to it, and sends back its wait status; it kills the engine if the launcher dies (as killing
`python -m prefect.engine` would have), and the engine dies with its supervisor (PR_SET_PDEATHSIG).
The engine takes the launcher's environment, working directory, umask and stdin/stdout/stderr,
rebuilds Prefect's settings and logging from that environment, and runs `prefect.engine` as
`python -m` does. A request this process cannot serve as a new interpreter would (another Python,
other interpreter settings) is declined: the launcher then starts cold.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import runpy
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("flows", "tasks", "blocks", "sandbox", "cli", "benchmarks", "tests", "webapp")
# What a new interpreter reads at start-up and a fork cannot change: such a difference is declined.
STARTUP_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE")
SOCKET_NAME = "warm-start.sock"
PR_SET_PDEATHSIG = 1
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes

LIST_MODULES = """
import importlib, pathlib, sys
for path in sorted(pathlib.Path("flows").glob("*.py")):
    if path.stem != "__init__":
        importlib.import_module(f"flows.{path.stem}")
print("\\n".join(sys.modules))  # in import order: as a new process loads them
"""


def socket_path(home: str | os.PathLike[str]) -> str:
    """Where the stack's warm starter listens: in its state dir (PREFECT_HOME), or in /tmp under a
    name made from it where that path is too long for a Unix socket."""
    path = str(Path(home).resolve() / SOCKET_NAME)
    if len(path.encode()) <= MAX_SOCKET_PATH:
        return path
    import hashlib

    return f"/tmp/hris-warm-start-{hashlib.sha256(path.encode()).hexdigest()[:16]}.sock"


def server_command(path: str) -> list[str]:
    return [sys.executable, "-m", "cli.warm_start", path]


def flow_run_command(path: str) -> str:
    """The work pool's `command` that starts each flow run through the warm starter at `path`."""
    import shlex

    return shlex.join([sys.executable, "-m", "cli.warm_run", path])


def libraries() -> list[str]:
    """Every module importing the flows loads, but the project's own."""
    listed = subprocess.run([sys.executable, "-c", LIST_MODULES], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:  # a flow that does not import: its runs say why; Prefect is still loaded
        print(f"warm start: the flows did not import, only Prefect is loaded: {listed.stderr[-500:]}")
        return []
    own = lambda name: name.split(".")[0] in PROJECT_PACKAGES  # noqa: E731
    skip = ("__main__", "prefect.engine")
    return [name for name in listed.stdout.split() if not own(name) and name not in skip]


def preload(names: list[str]) -> int:
    """Import `names` (each best effort); how many are loaded."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (an optional submodule of a library: its importer copes)
            pass
    importlib.import_module("prefect.flow_engine")
    return len(sys.modules)


PROBE_EXIT = 3


def probe() -> bool:
    """A fork of this process runs Prefect's event loop thread as an engine does: False when the
    libraries loaded here broke that (importing `_asyncio` before `asyncio` did), so serve none."""
    pid = os.fork()
    if pid == 0:
        try:
            from prefect.utilities.asyncutils import run_coro_as_sync

            run_coro_as_sync(_probe())
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(PROBE_EXIT)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


async def _probe() -> None:
    import anyio

    with anyio.CancelScope():
        await anyio.sleep(0)


def stack_command(settings: dict[str, str]) -> list[str] | None:
    """How `up` starts the warm starter for its stack, or None when it is off."""
    if not enabled():
        return None
    return server_command(socket_path(settings["PREFECT_HOME"]))


def enabled() -> bool:
    """On unless HRIS_WARM_START=0: twenty resumes at once reach their next gate in ~7.3 s instead of
    ~16 s (docs/performance.md); Linux only (pidfd_open, PR_SET_PDEATHSIG)."""
    off = os.environ.get("HRIS_WARM_START", "1").strip().lower() in ("0", "false", "no", "off")
    return not off and sys.platform == "linux"


def pool_command() -> str:
    """The stack's pool command: through the warm starter of PREFECT_HOME, or with HRIS_WARM_START=0
    the engine alone (cli/work_pool.py)."""
    from cli.work_pool import engine_command

    return flow_run_command(socket_path(os.environ["PREFECT_HOME"])) if enabled() else engine_command()


@dataclass
class Job:
    """What the forked engine takes over from the launcher."""

    env: dict[str, str]
    cwd: str
    args: list[str]
    umask: int
    fds: list[int]


def declined(request: dict[str, Any], fds: list[int]) -> str | None:
    """Why this process cannot start the request as a new interpreter would, or None."""
    if len(fds) != 3:
        return "fds"
    if request.get("executable") != sys.executable:
        return "executable"
    env = request.get("env", {})
    for name in {*os.environ, *env}:
        if (name.startswith("PYTHON") or name in STARTUP_VARIABLES) and env.get(name) != os.environ.get(name):
            return name
    if threads_at_fork != 1:
        return "threads"  # a fork would copy a lock some thread holds
    if not probed:
        return "probe"
    return None


def receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    header, fds, _flags, _address = socket.recv_fds(conn, 4, 3)
    (size,) = struct.unpack("!I", header)
    return json.loads(exactly(conn, size)), fds


def exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("cut short")
        data += chunk
    return data


def supervise(conn: socket.socket) -> Job | None:
    """In the forked supervisor: check the request, fork the engine (returned, in the engine), then
    relay signals and the exit status. Never returns in the supervisor itself."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # it lives as long as its engine and launcher
    try:
        request, fds = receive(conn)
        reason = declined(request, fds)
        conn.sendall(f"no {reason}\n".encode() if reason else b"ok\n")
        if reason or exactly(conn, 3) != b"go\n":  # not a byte more: the launcher's signals follow
            os._exit(0)
    except (OSError, ValueError):
        os._exit(0)
    pid = os.fork()
    if pid == 0:
        conn.close()
        return Job(request["env"], request["cwd"], request["args"], request["umask"], fds)
    for fd in fds:
        os.close(fd)
    run_id = request["env"].get("PREFECT__FLOW_RUN_ID", "?")
    print(f"warm start: flow run {run_id}: engine pid {pid}", flush=True)
    relay(conn, pid)
    os._exit(0)


def relay(conn: socket.socket, pid: int) -> None:
    """Send the launcher's signals on to the engine and its wait status back; the launcher gone,
    kill the engine."""
    pidfd = os.pidfd_open(pid)
    buffered = b""
    while True:
        ready, _, _ = select.select([conn, pidfd], [], [])
        if pidfd in ready:
            _, status = os.waitpid(pid, 0)
            try:
                conn.sendall(f"exit {status}\n".encode())
            except OSError:
                pass
            return
        data = conn.recv(4096)
        if not data:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        buffered += data
        *lines, buffered = buffered.split(b"\n")
        for line in lines:
            words = line.decode().split()
            if len(words) == 2 and words[0] == "signal" and words[1].isdigit():
                try:
                    os.kill(pid, int(words[1]))
                except ProcessLookupError:
                    pass


def serve(path: str) -> Job:
    """Accept requests until stopped; returns only in a forked engine."""
    global threads_at_fork
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    if os.path.exists(path):
        os.unlink(path)  # left by a starter that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(128)
    print(f"warm start: listening on {path} with {len(sys.modules)} modules loaded", flush=True)
    gc.freeze()  # what is loaded stays shared with every fork
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError as exc:  # out of file descriptors, say: that launcher starts cold
                print(f"warm start: accept failed: {exc}", flush=True)
                time.sleep(0.1)
                continue
            threads_at_fork = threading.active_count()
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                pid = os.fork()
            except OSError as exc:  # closed before "ok": the launcher starts cold
                print(f"warm start: fork failed: {exc}", flush=True)
                conn.close()
                continue
            if pid == 0:
                listener.close()
                job = supervise(conn)
                if job is not None:
                    return job
                os._exit(0)
            conn.close()
    finally:
        if os.getpid() == server_pid:
            os.unlink(path)


def take_over(job: Job) -> None:
    """In the forked engine: take over the launcher's process state, and Prefect's settings from its
    environment; `main` then runs `prefect.engine` as `python -m prefect.engine` does (its SystemExit
    or KeyboardInterrupt ends this interpreter as it would that one)."""
    os.setpgid(0, 0)  # signals to the starter's group (`up` stopping) reach it only through the launcher
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for number, fd in enumerate(job.fds):
        os.dup2(fd, number)
        os.close(fd)
    os.umask(job.umask)
    os.chdir(job.cwd)
    os.environ.clear()
    os.environ.update(job.env)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path[0] = job.cwd  # `python -m` puts the working directory first
    sys.argv = [sys.argv[0], *job.args]
    fresh_prefect_settings()
    sys.modules.pop("prefect.engine", None)


def fresh_prefect_settings() -> None:
    """What Prefect read from the environment at import, read again from the run's: the root
    settings context (API URL, home, profile, logging settings) and the logging set up from it."""
    import prefect.context
    from prefect.logging.configuration import setup_logging

    prefect.context.refresh_global_settings_context()
    setup_logging(incremental=False)


server_pid = os.getpid()
threads_at_fork = 1
probed = True


def main(argv: list[str] | None = None) -> int:
    global server_pid
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m cli.warm_start SOCKET", file=sys.stderr)
        return 2
    if len(argv[0].encode()) > MAX_SOCKET_PATH:
        print(f"warm start: socket path too long for a Unix socket: {argv[0]}", file=sys.stderr)
        return 2
    global probed
    preload(libraries())
    server_pid = os.getpid()
    probed = probe()
    if not probed:
        print("warm start: a forked engine could not run Prefect's event loop: every run starts cold")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    job = serve(argv[0])
    try:
        take_over(job)
    except BaseException:  # noqa: BLE001  (the engine never got going: say why on the run's stderr)
        import traceback

        traceback.print_exc()
        os._exit(1)
    runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
