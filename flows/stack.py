"""`make up`: the whole runbook on one machine — Prefect server (SQLite), stand-ins, deployments, worker.

Everything it starts is a child process in its own process group, so Ctrl-C reaches only `up`,
which then stops them all: SIGTERM, and SIGKILL for what is still there a few seconds later. Run it
again and it reuses what is already there: block documents are kept, the pool is created once,
deployments are updated in place.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK_POOL = "hris-runbook"
STOP_GRACE_SECONDS = 5.0


class Children:
    """The processes `up` started, each leading its own process group (the server's and the
    worker's subprocesses included), stopped together with a bounded wait."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []

    def start(self, command: list[str], log_path: Path) -> subprocess.Popen:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def _signal_all(self, sig: int) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass  # the whole group is gone already

    def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM every group, wait up to `grace_seconds` in all, then SIGKILL what is left."""
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self._signal_all(signal.SIGKILL)  # stragglers, and any grandchild left behind by its parent
        for process in self.processes:
            process.wait()


def _take_terminal() -> tuple[int, int] | None:
    """Run in our own foreground process group, so Ctrl-C in `make up` reaches `up` and not make:
    make then exits with our status (0) instead of dying of the interrupt. None when not needed."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return None  # no terminal (tests, services)
    previous = os.getpgrp()
    if os.tcgetpgrp(tty) != previous or previous == os.getpid():
        os.close(tty)  # in the background, or already leading our own group (started from a shell)
        return None
    os.setpgid(0, 0)
    _set_foreground(tty, os.getpgrp())
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)  # Ctrl-Z would stop us with make still waiting
    return tty, previous


def _set_foreground(tty: int, group: int) -> None:
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not otherwise
    try:
        os.tcsetpgrp(tty, group)
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, old)


def _give_back_terminal(taken: tuple[int, int] | None) -> None:
    if taken:
        tty, previous = taken
        _set_foreground(tty, previous)
        os.close(tty)


def database_settings(url: str | None) -> dict[str, str]:
    """Prefect's database setting for HRIS_DATABASE_URL (PostgreSQL); none keeps SQLite in PREFECT_HOME."""
    url = (url or "").strip()
    if not url:
        return {}
    if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise SystemExit(
            f"HRIS_DATABASE_URL: expected postgresql+asyncpg://user:password@host:5432/database, got "
            f"{url.split('://')[0]}://…"
        )
    return {"PREFECT_SERVER_DATABASE_CONNECTION_URL": url}


def configure_environment() -> dict[str, str]:
    """Point Prefect at a project-local home and a loopback server; call before importing Prefect.

    HRIS_DATABASE_URL puts the server on PostgreSQL; PREFECT_LOCAL_STORAGE_PATH (a shared path)
    and HRIS_REDIS_URL make once-only records hold across workers on several machines.
    """
    port = os.environ.get("HRIS_PREFECT_PORT", "4200")
    home = Path(os.environ.get("HRIS_STATE_DIR", ROOT / ".prefect")).resolve()
    settings = {
        "PREFECT_HOME": str(home),
        "PREFECT_LOCAL_STORAGE_PATH": os.environ.get("PREFECT_LOCAL_STORAGE_PATH") or str(home / "storage"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_UI_URL": f"http://127.0.0.1:{port}",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": port,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "HRIS_RUNBOOK_DIR": str(ROOT),
        "HRIS_SANDBOX_DIR": os.environ.get("HRIS_SANDBOX_DIR", str(ROOT / ".sandbox")),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    } | database_settings(os.environ.get("HRIS_DATABASE_URL"))
    os.environ.update(settings)
    home.mkdir(parents=True, exist_ok=True)
    return settings


def healthy(base_url: str) -> bool:
    """`<base_url>/health` answers 200: a Prefect API, or one of our web servers."""
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def bootstrap() -> bool:
    """Register block types, save sandbox block documents where none exist, create the work pool.

    Returns whether any `default` block points at the sandbox (so its stand-ins must run).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from blocks import ALL_BLOCKS, DEFAULT_NAME
    from sandbox.blocks import points_at_sandbox, sandbox_blocks

    for block_type in ALL_BLOCKS:
        block_type.register_type_and_schema()
    uses_sandbox = False
    for block_type, sandbox_block in sandbox_blocks(Path(os.environ["HRIS_SANDBOX_DIR"])).items():
        try:
            current = block_type.load(DEFAULT_NAME)
        except ValueError:
            sandbox_block.save(DEFAULT_NAME)
            current = sandbox_block
        uses_sandbox |= points_at_sandbox(current)
    with get_client(sync_client=True) as client:
        if WORK_POOL not in {pool.name for pool in client.read_work_pools()}:
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
    return uses_sandbox


def up() -> int:
    """Start everything, print where to look, and wait for Ctrl-C."""
    settings = configure_environment()
    api_url, ui_url = settings["PREFECT_API_URL"], settings["PREFECT_UI_URL"]
    logs = Path(settings["PREFECT_HOME"]) / "logs"
    logs.mkdir(exist_ok=True)
    started = Children()
    children = started.processes

    def start(name: str, *command: str) -> None:
        process = started.start(list(command), logs / f"{name}.log")
        print(f"  started {name} (pid {process.pid}, log: {logs / f'{name}.log'})", flush=True)

    def stop() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abandon the children
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        started.stop()
        _give_back_terminal(taken)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C stops the stack even when `up` was started with SIGINT ignored (a script's background
    # job, nohup): Python would otherwise keep that and never raise KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    taken = _take_terminal()
    try:
        if healthy(api_url):
            print(f"  Prefect server already running at {ui_url}; reusing it", flush=True)
        else:
            start("prefect-server", _bin("prefect"), "server", "start")
            deadline = time.monotonic() + 180
            while not healthy(api_url):
                if time.monotonic() > deadline or children[-1].poll() is not None:
                    print(f"Prefect server did not start; see {logs / 'prefect-server.log'}", file=sys.stderr)
                    return 1
                time.sleep(1)

        uses_sandbox = bootstrap()
        from sandbox.ports import DEMO_SHEET_KEY, SETUP_LINKS_PORT, SMTP_PORT, WEB_INTERNAL_PORT

        sandbox_dir = Path(settings["HRIS_SANDBOX_DIR"])
        if uses_sandbox and not _listening(SMTP_PORT):
            start("sandbox", sys.executable, "-m", "sandbox", "--state", settings["HRIS_SANDBOX_DIR"])

        deploy = subprocess.run(
            [_bin("prefect"), "--no-prompt", "deploy", "--all"], cwd=ROOT, capture_output=True, text=True
        )
        if deploy.returncode != 0:
            print(deploy.stdout[-3000:], deploy.stderr[-3000:], sep="\n", file=sys.stderr)
            return 1
        for number in range(1, int(os.environ.get("HRIS_WORKERS", "1")) + 1):  # all on one pool
            name = "worker" if number == 1 else f"worker-{number}"
            start(name, _bin("prefect"), "worker", "start", "--pool", WORK_POOL)
        if uses_sandbox and not _listening(SETUP_LINKS_PORT):  # a second `make up` reuses the first's
            start(
                "setup-links",
                _bin("hris-runbook"),
                "setup-links",
                "--port",
                str(SETUP_LINKS_PORT),
                "--internal-port",
                str(WEB_INTERNAL_PORT),
            )

        print(
            f"\nhris-runbook is up.\n"
            f"  Prefect UI:      {ui_url}  (Deployments > setup-guides > Run > Custom run)\n"
            + (
                f"  Sandbox emails:  {sandbox_dir}/mail/*.eml\n"
                f"  Sandbox Slack:   {sandbox_dir}/slack/messages.jsonl\n"
                f"  Sandbox sheets:  {sandbox_dir}/sheets/<key>.csv (demo key {DEMO_SHEET_KEY})\n"
                f"  Status board:    http://127.0.0.1:{WEB_INTERNAL_PORT}/board\n"
                if uses_sandbox
                else ""
            )
            + "  Stop with Ctrl-C.\n",
            flush=True,
        )
        from flows.steps import help_center_catalogue, help_center_warning
        from tasks.platforms import CatalogueOverrideError

        try:
            warning = help_center_warning(help_center_catalogue())
        except CatalogueOverrideError as exc:
            warning = f"{exc} (Variables > help_center): runs that email customers will stop on it"
        if warning:
            print(f"  WARNING: {warning}\n", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(1)
        failed = [c.args[1] if len(c.args) > 1 else c.args[0] for c in children if c.poll() is not None]
        print(f"stopped: {failed} exited; see {logs}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        stop()
