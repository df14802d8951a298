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
from collections.abc import Mapping
from pathlib import Path

from cli.bootstrap import WORK_POOL, GoLiveRefused, bootstrap, production_requested
from cli.children import Children, give_back_terminal, take_terminal

ROOT = Path(__file__).resolve().parent.parent


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
    (`stack_settings` of this process's environment, applied to it; see there.)"""
    settings = stack_settings(os.environ)
    os.environ.update(settings)
    Path(settings["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    return settings


def stack_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment `make up` gives the Prefect server, the worker and the CLI, from `environ`.

    HRIS_BIND_HOST (default 127.0.0.1; 0.0.0.0 for the team) is where the server listens and
    HRIS_PUBLIC_URL (e.g. https://hris.10kc.com, behind the operator's proxy) what every link uses.

    HRIS_DATABASE_URL puts the server on PostgreSQL; PREFECT_LOCAL_STORAGE_PATH (a shared path)
    and HRIS_REDIS_URL make once-only records hold across workers on several machines.
    """
    port = environ.get("HRIS_PREFECT_PORT", "4200")
    home = Path(environ.get("HRIS_STATE_DIR", ROOT / ".prefect")).resolve()
    bind = environ.get("HRIS_BIND_HOST", "").strip() or "127.0.0.1"
    local = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind  # where our own processes reach it
    public = (environ.get("HRIS_PUBLIC_URL", "").strip() or f"http://{local}:{port}").rstrip("/")
    if not public.startswith(("http://", "https://")):
        raise SystemExit(f"HRIS_PUBLIC_URL: expected http(s)://host[:port], got {public!r}")
    settings = {
        "PREFECT_HOME": str(home),
        "PREFECT_LOCAL_STORAGE_PATH": environ.get("PREFECT_LOCAL_STORAGE_PATH") or str(home / "storage"),
        "PREFECT_API_URL": f"http://{local}:{port}/api",
        "PREFECT_UI_URL": public,  # every link in Slack, emails and artifacts starts with it
        "PREFECT_UI_API_URL": f"{public}/api",  # what the browser calls
        "PREFECT_SERVER_API_HOST": bind,
        "PREFECT_SERVER_API_PORT": port,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # the worker asks for runs to start every second (Prefect's default is 10 s): a CSM's Resume
        # is picked up within ~0.5 s on average instead of ~5 s (docs/performance.md, issue 24)
        "PREFECT_WORKER_QUERY_SECONDS": os.environ.get("PREFECT_WORKER_QUERY_SECONDS", "1"),
        "HRIS_RUNBOOK_DIR": str(ROOT),
        "HRIS_SANDBOX_DIR": environ.get("HRIS_SANDBOX_DIR", str(ROOT / ".sandbox")),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    } | database_settings(environ.get("HRIS_DATABASE_URL"))
    return settings


def server_command() -> list[str]:
    """How `up` starts the Prefect server: `prefect server start` with SQLite transactions that wait
    for the write lock instead of answering 503 "database is locked" (cli/prefect_server.py)."""
    return [sys.executable, "-m", "cli.prefect_server", "start"]


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


class _Stack:
    """What `up` started and where each child logs."""

    def __init__(self, settings: dict[str, str]) -> None:
        self.settings = settings
        self.api_url, self.ui_url = settings["PREFECT_API_URL"], settings["PREFECT_UI_URL"]
        self.logs = Path(settings["PREFECT_HOME"]) / "logs"
        self.logs.mkdir(exist_ok=True)
        self.children = Children(ROOT)
        self.processes = self.children.processes
        self.optional: list = []  # children whose exit does not stop the stack (it says so)

    def start(self, name: str, *command: str, optional: bool = False) -> None:
        process = self.children.start(list(command), self.logs / f"{name}.log")
        print(f"  started {name} (pid {process.pid}, log: {self.logs / f'{name}.log'})", flush=True)
        if optional:
            self.optional.append((name, process))


def up(production: bool = False) -> int:
    """Start everything, print where to look, and wait for Ctrl-C.

    In production mode nothing from sandbox/ is saved or started, and `doctor` must pass first.
    """
    production = production_requested(production)
    stack = _Stack(configure_environment())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C stops the stack even when `up` was started with SIGINT ignored (a script's background
    # job, nohup): Python would otherwise keep that and never raise KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    taken = take_terminal()
    try:
        return _run(stack, production)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abandon the children
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.children.stop()
        give_back_terminal(taken)


def _run(stack: _Stack, production: bool) -> int:
    """`up`'s stages in order; the first that fails gives the exit status (1: broken, 2: refused)."""
    if not _start_server(stack):
        return 1
    try:
        plan = bootstrap(production)
    except GoLiveRefused as refused:
        print(refused.code, file=sys.stderr, flush=True)
        return 2
    print(f"  {plan.line}", flush=True)
    _start_stand_ins_and_web_app(stack, plan.uses_sandbox, production)
    if production and not _doctor_passes(stack):  # the web app is up first, so doctor sees its public URL
        return 2
    if not _deploy(stack):
        return 1
    _start_workers(stack)
    # before the banner: once it is printed, `up` only waits (a slow import here could take Ctrl-C)
    print(_banner(stack, plan.uses_sandbox), flush=True)
    return _wait(stack)


SERVER_START_SECONDS = 180  # a busy 2-core machine: Prefect's server, and the web app production waits for


def _start_server(stack: _Stack) -> bool:
    """Reuse a Prefect server that answers, or start one and wait (3 minutes at most) until it does."""
    if healthy(stack.api_url):
        print(f"  Prefect server already running at {stack.ui_url}; reusing it", flush=True)
        return True
    stack.start("prefect-server", *server_command())
    if not _answers(stack.api_url, stack.processes[-1]):
        print(f"Prefect server did not start; see {stack.logs / 'prefect-server.log'}", file=sys.stderr)
        return False
    return True


def _answers(url: str, child: subprocess.Popen | None) -> bool:
    """Wait until `url` answers; False once `child` (what serves it) has exited or after
    SERVER_START_SECONDS."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not healthy(url):
        if time.monotonic() > deadline or (child is not None and child.poll() is not None):
            return False
        time.sleep(0.5)
    return True


def _start_stand_ins_and_web_app(stack: _Stack, uses_sandbox: bool, production: bool) -> None:
    """The stand-ins when the blocks are the sandbox's, and the web app (a second `make up` reuses both)."""
    from sandbox.ports import SETUP_LINKS_PORT, SMTP_PORT, WEB_INTERNAL_PORT

    settings = stack.settings
    if uses_sandbox and not _listening(SMTP_PORT):
        stack.start("sandbox", sys.executable, "-m", "sandbox", "--state", settings["HRIS_SANDBOX_DIR"])
    if (uses_sandbox or production) and not _listening(SETUP_LINKS_PORT):
        host = settings["PREFECT_SERVER_API_HOST"] if production else "127.0.0.1"
        stack.start(
            "setup-links",
            _bin("hris-runbook"),
            "setup-links",
            "--host",
            host,
            "--port",
            str(SETUP_LINKS_PORT),
            "--internal-port",
            str(WEB_INTERNAL_PORT),
        )


def _doctor_passes(stack: _Stack) -> bool:
    """Production mode: wait for the web app (as long as for the server: a busy machine starts it
    slowly, and doctor would fail its public URL), then every `doctor` check must pass."""
    from cli.doctor import doctor, table
    from sandbox.ports import SETUP_LINKS_PORT

    last = stack.processes[-1] if stack.processes else None
    _answers(f"http://127.0.0.1:{SETUP_LINKS_PORT}", last)  # if not, doctor's web app row fails
    results = doctor()
    print(table(results), flush=True)
    if any(not r.ok for r in results):
        print(
            "doctor: not every check passed; no deployment or worker started (fix the FAIL rows)",
            file=sys.stderr,
        )
        return False
    return True


def _deploy(stack: _Stack) -> bool:
    """Every deployment of prefect.yaml, created or updated in place, and the server's automations."""
    deploy = subprocess.run(
        [_bin("prefect"), "--no-prompt", "deploy", "--all"], cwd=ROOT, capture_output=True, text=True
    )
    if deploy.returncode != 0:
        print(deploy.stdout[-3000:], deploy.stderr[-3000:], sep="\n", file=sys.stderr)
        return False
    from cli.monitoring import ensure_automations

    print(f"  {ensure_automations()}", flush=True)  # the server alerts when the worker cannot
    return True


def _start_workers(stack: _Stack) -> None:
    """HRIS_WORKERS workers (1 by default), all on the one work pool; the warm starter first unless
    HRIS_WARM_START=0 (a run that comes before it is listening starts cold)."""
    from cli.warm_start import stack_command

    if warm := stack_command(stack.settings):  # if it exits, runs start cold: the stack goes on
        stack.start("warm-start", *warm, optional=True)
    for number in range(1, int(os.environ.get("HRIS_WORKERS", "1")) + 1):
        name = "worker" if number == 1 else f"worker-{number}"
        stack.start(name, _bin("prefect"), "worker", "start", "--pool", WORK_POOL)


def _banner(stack: _Stack, uses_sandbox: bool) -> str:
    """Where to look: the Prefect UI, the stand-ins' outputs, and a help-center catalogue warning."""
    from sandbox.ports import DEMO_SHEET_KEY, WEB_INTERNAL_PORT
    from tasks.platforms import CatalogueOverrideError
    from tasks.steps import help_center_catalogue, help_center_warning

    try:
        warning = help_center_warning(help_center_catalogue())
    except CatalogueOverrideError as exc:
        warning = f"{exc} (Variables > help_center): runs that email customers will stop on it"
    sandbox_dir = Path(stack.settings["HRIS_SANDBOX_DIR"])
    return (
        f"\nhris-runbook is up.\n"
        f"  Prefect UI:      {stack.ui_url}  (Deployments > setup-guides > Run > Custom run)\n"
        + (
            f"  Sandbox emails:  {sandbox_dir}/mail/*.eml\n"
            f"  Sandbox Slack:   {sandbox_dir}/slack/messages.jsonl\n"
            f"  Sandbox sheets:  {sandbox_dir}/sheets/<key>.csv (demo key {DEMO_SHEET_KEY})\n"
            f"  Status board:    http://127.0.0.1:{WEB_INTERNAL_PORT}/board\n"
            if uses_sandbox
            else ""
        )
        + (f"  WARNING: {warning}\n" if warning else "")
        + "  Stop with Ctrl-C.\n"
    )


def _wait(stack: _Stack) -> int:
    """Until Ctrl-C (KeyboardInterrupt, caught by `up`) or a child exits: that is a failure, named."""
    optional = dict(stack.optional)
    needed = [child for child in stack.processes if child not in optional.values()]
    while all(child.poll() is None for child in needed):
        for name, child in list(optional.items()):
            if child.poll() is not None:
                print(f"  {name} exited ({child.returncode}); runs start cold; see {stack.logs}", flush=True)
                del optional[name]
        time.sleep(1)
    failed = [c.args[1] if len(c.args) > 1 else c.args[0] for c in needed if c.poll() is not None]
    print(f"stopped: {failed} exited; see {stack.logs}", file=sys.stderr)
    return 1
