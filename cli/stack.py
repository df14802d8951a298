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
from dataclasses import dataclass
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


class GoLiveRefused(SystemExit):
    """Production mode found a missing or sandbox block; one line per problem, each naming the block."""


@dataclass
class Plan:
    """What `up` runs on: whether stand-ins are needed, and the one line that says so at start."""

    uses_sandbox: bool
    line: str


def block_types() -> tuple[list, list]:
    """(required, optional) block types of a deployment, as blocks/ lists them."""
    from blocks import OPTIONAL_BLOCKS, REQUIRED_BLOCKS

    return list(REQUIRED_BLOCKS), list(OPTIONAL_BLOCKS)


def _load_default(block_type):
    from blocks.web_app import load_checked

    try:
        return load_checked(block_type, "default", required=False)
    except RuntimeError as exc:  # an invalid saved document: named, never faked over
        raise GoLiveRefused(f"error: {exc}") from None


def bootstrap(production: bool = False) -> Plan:
    """Register block types, create the work pool, and decide which blocks the stack runs on.

    Sandbox blocks are saved (where none exists) only when no real block is saved: beside real
    blocks a missing one stays missing (no hub = the checklist path). `production` saves nothing
    and refuses a missing required block or a saved sandbox block, naming it.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from blocks import DEFAULT_NAME, SftpServer, TenKCHub, WebApp, WorkOSCredentials
    from cli.monitoring import monitoring_block, monitoring_block_label
    from cli.warm_start import configure_pool
    from sandbox.blocks import sandbox_marker, sandbox_monitoring_block
    from tasks.contracts import MONITORING_BLOCK

    required, optional = block_types()
    for block_type in [*required, *optional]:
        block_type.register_type_and_schema()
    with get_client(sync_client=True) as client:
        if WORK_POOL not in {pool.name for pool in client.read_work_pools()}:
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
    configure_pool(WORK_POOL)  # runs start through the warm starter (cli/warm_start.py, issue 24)
    saved = {block_type: _load_default(block_type) for block_type in [*required, *optional]}
    sandbox = {t: sandbox_marker(b) for t, b in saved.items() if b is not None and sandbox_marker(b)}
    real = [t for t, b in saved.items() if b is not None and t not in sandbox]
    monitoring = monitoring_block()
    workos = saved[WorkOSCredentials]
    links_from_workos = workos is not None and bool(workos.setup_links_url)

    def missing_required() -> list[str]:
        return [
            t.get_block_type_name()
            for t in required
            if saved[t] is None and not (t is WebApp and links_from_workos)
        ]

    name = lambda t: t.get_block_type_name()  # noqa: E731
    if production:
        problems = [
            f"error: {name(t)} block {DEFAULT_NAME!r} is a sandbox block ({why}): replace it with the real "
            "one in the Prefect UI (Blocks) before going live"
            for t, why in sandbox.items()
        ] + [
            f"error: no {block} block named {DEFAULT_NAME!r}: create it in the Prefect UI (Blocks); "
            "production mode never saves the sandbox's"
            for block in missing_required()
        ]
        if monitoring is None:
            problems.append(
                f"error: no {monitoring_block_label()}: create it in the Prefect UI (Blocks) with the "
                "incoming webhook of #monitoring-hris-files; production mode never saves the sandbox's"
            )
        elif sandbox_marker(monitoring):
            problems.append(
                f"error: {type(monitoring).get_block_type_name()} block {MONITORING_BLOCK!r} is a sandbox "
                f"block ({sandbox_marker(monitoring)}): replace it with the real one in the Prefect UI "
                "(Blocks) before going live"
            )
        if problems:
            raise GoLiveRefused("\n".join(problems))
        line = "production: every block is real; no stand-in started"
    elif not real:
        from sandbox.blocks import sandbox_blocks

        for block_type, sandbox_block in sandbox_blocks(Path(os.environ["HRIS_SANDBOX_DIR"])).items():
            if saved.get(block_type) is None:
                sandbox_block.save(DEFAULT_NAME)
        if monitoring is None:  # the Prefect server's automations post to the Slack stand-in's webhook
            sandbox_monitoring_block().save(MONITORING_BLOCK)
        return Plan(True, "sandbox: every block is the sandbox's, stand-ins on 127.0.0.1")
    else:
        line = "configured blocks: " + ", ".join(map(name, real))
        if sandbox:
            line += "; still the sandbox's: " + ", ".join(map(name, sandbox))
        missing = missing_required()
        if missing:
            line += "; missing (runs that need them stop naming them): " + ", ".join(missing)
        line += "; no sandbox block saved"
    if saved[TenKCHub] is None:
        line += "; no 10KC Hub block: segments and uploads use the CSM checklist"
    if saved[SftpServer] is None:
        line += "; no SFTP Server block: the SFTP path cannot run"
    return Plan(bool(sandbox), line)


def production_requested(flag: bool = False) -> bool:
    """`up --production`, or HRIS_PRODUCTION=1 in the environment of `make up`."""
    return flag or os.environ.get("HRIS_PRODUCTION", "").strip().lower() in ("1", "true", "yes")


def up(production: bool = False) -> int:
    """Start everything, print where to look, and wait for Ctrl-C.

    In production mode nothing from sandbox/ is saved or started, and `doctor` must pass first.
    """
    production = production_requested(production)
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
            start("prefect-server", *server_command())
            deadline = time.monotonic() + 180
            while not healthy(api_url):
                if time.monotonic() > deadline or children[-1].poll() is not None:
                    print(f"Prefect server did not start; see {logs / 'prefect-server.log'}", file=sys.stderr)
                    return 1
                time.sleep(1)

        try:
            plan = bootstrap(production)
        except GoLiveRefused as refused:
            print(refused.code, file=sys.stderr, flush=True)
            return 2
        print(f"  {plan.line}", flush=True)
        uses_sandbox = plan.uses_sandbox
        from sandbox.ports import DEMO_SHEET_KEY, SETUP_LINKS_PORT, SMTP_PORT, WEB_INTERNAL_PORT

        sandbox_dir = Path(settings["HRIS_SANDBOX_DIR"])
        if uses_sandbox and not _listening(SMTP_PORT):
            start("sandbox", sys.executable, "-m", "sandbox", "--state", settings["HRIS_SANDBOX_DIR"])
        if (uses_sandbox or production) and not _listening(SETUP_LINKS_PORT):  # a second `make up` reuses it
            host = settings["PREFECT_SERVER_API_HOST"] if production else "127.0.0.1"
            start(
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
        if production:  # the web app is up first, so doctor sees its public URL answer
            from cli.doctor import doctor, table

            deadline = time.monotonic() + 60
            while not healthy(f"http://127.0.0.1:{SETUP_LINKS_PORT}") and time.monotonic() < deadline:
                if children and children[-1].poll() is not None:
                    break  # it exited (its log says why); doctor's web app row fails
                time.sleep(0.5)
            results = doctor()
            print(table(results), flush=True)
            if any(not r.ok for r in results):
                print(
                    "doctor: not every check passed; no deployment or worker started (fix the FAIL rows)",
                    file=sys.stderr,
                )
                return 2

        deploy = subprocess.run(
            [_bin("prefect"), "--no-prompt", "deploy", "--all"], cwd=ROOT, capture_output=True, text=True
        )
        if deploy.returncode != 0:
            print(deploy.stdout[-3000:], deploy.stderr[-3000:], sep="\n", file=sys.stderr)
            return 1
        from cli.monitoring import ensure_automations
        from cli.warm_start import stack_command

        print(f"  {ensure_automations()}", flush=True)  # the server alerts when the worker cannot
        if warm := stack_command(settings):  # before the worker: a run that comes first starts cold
            start("warm-start", *warm)
        for number in range(1, int(os.environ.get("HRIS_WORKERS", "1")) + 1):  # all on one pool
            name = "worker" if number == 1 else f"worker-{number}"
            start(name, _bin("prefect"), "worker", "start", "--pool", WORK_POOL)

        # before the banner: once it is printed, `up` only waits (a slow import here could take Ctrl-C)
        from tasks.platforms import CatalogueOverrideError
        from tasks.steps import help_center_catalogue, help_center_warning

        try:
            warning = help_center_warning(help_center_catalogue())
        except CatalogueOverrideError as exc:
            warning = f"{exc} (Variables > help_center): runs that email customers will stop on it"
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
            + (f"  WARNING: {warning}\n" if warning else "")
            + "  Stop with Ctrl-C.\n",
            flush=True,
        )
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
