"""Which blocks the stack runs on: register the block types, create the work pool, and decide
sandbox or real, or refuse to go live naming each missing or sandbox block (`make up`, `bootstrap`).

Apart from cli/stack.py so the go-live decision reads on its own, without the processes `up` starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WORK_POOL = "hris-runbook"


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
    from blocks import SftpServer, TenKCHub, WebApp, WorkOSCredentials
    from cli.monitoring import monitoring_block
    from sandbox.blocks import sandbox_marker

    required, optional = block_types()
    _register_types_and_pool([*required, *optional])
    saved = {block_type: _load_default(block_type) for block_type in [*required, *optional]}
    sandbox = {t: sandbox_marker(b) for t, b in saved.items() if b is not None and sandbox_marker(b)}
    real = [t for t, b in saved.items() if b is not None and t not in sandbox]
    monitoring = monitoring_block()
    workos = saved[WorkOSCredentials]
    links_from_workos = workos is not None and bool(workos.setup_links_url)
    missing = [
        t.get_block_type_name()
        for t in required
        if saved[t] is None and not (t is WebApp and links_from_workos)
    ]
    if production:
        problems = _go_live_problems(sandbox, missing, monitoring)
        if problems:
            raise GoLiveRefused("\n".join(problems))
        line = "production: every block is real; no stand-in started"
    elif not real:
        _save_sandbox_blocks(saved, monitoring)
        return Plan(True, "sandbox: every block is the sandbox's, stand-ins on 127.0.0.1")
    else:
        line = _configured_line(real, sandbox, missing)
    if saved[TenKCHub] is None:
        line += "; no 10KC Hub block: segments and uploads use the CSM checklist"
    if saved[SftpServer] is None:
        line += "; no SFTP Server block: the SFTP path cannot run"
    return Plan(bool(sandbox), line)


def _register_types_and_pool(types: list) -> None:
    from prefect.client.orchestration import get_client

    from cli.warm_start import pool_command
    from cli.work_pool import ensure_work_pool

    for block_type in types:
        block_type.register_type_and_schema()
    with get_client(sync_client=True) as client:  # each run starts as one process, warm if it can (issue 24)
        ensure_work_pool(client, WORK_POOL, pool_command())


def _go_live_problems(sandbox: dict, missing: list[str], monitoring) -> list[str]:
    """Why production mode refuses to start: one line per sandbox or missing block, each naming it."""
    from blocks import DEFAULT_NAME
    from cli.monitoring import monitoring_block_label
    from sandbox.blocks import sandbox_marker
    from tasks.contracts import MONITORING_BLOCK

    problems = [
        f"error: {t.get_block_type_name()} block {DEFAULT_NAME!r} is a sandbox block ({why}): replace it "
        "with the real one in the Prefect UI (Blocks) before going live"
        for t, why in sandbox.items()
    ] + [
        f"error: no {block} block named {DEFAULT_NAME!r}: create it in the Prefect UI (Blocks); "
        "production mode never saves the sandbox's"
        for block in missing
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
    return problems


def _save_sandbox_blocks(saved: dict, monitoring) -> None:
    """No real block saved: the sandbox's, where none is saved, and its monitoring webhook."""
    from blocks import DEFAULT_NAME
    from sandbox.blocks import sandbox_blocks, sandbox_monitoring_block
    from tasks.contracts import MONITORING_BLOCK

    for block_type, sandbox_block in sandbox_blocks(Path(os.environ["HRIS_SANDBOX_DIR"])).items():
        if saved.get(block_type) is None:
            sandbox_block.save(DEFAULT_NAME)
    if monitoring is None:  # the Prefect server's automations post to the Slack stand-in's webhook
        sandbox_monitoring_block().save(MONITORING_BLOCK)


def _configured_line(real: list, sandbox: dict, missing: list[str]) -> str:
    """Beside real blocks: which are real, which still the sandbox's, which missing."""
    line = "configured blocks: " + ", ".join(t.get_block_type_name() for t in real)
    if sandbox:
        line += "; still the sandbox's: " + ", ".join(t.get_block_type_name() for t in sandbox)
    if missing:
        line += "; missing (runs that need them stop naming them): " + ", ".join(missing)
    return line + "; no sandbox block saved"


def production_requested(flag: bool = False) -> bool:
    """`up --production`, or HRIS_PRODUCTION=1 in the environment of `make up`."""
    return flag or os.environ.get("HRIS_PRODUCTION", "").strip().lower() in ("1", "true", "yes")
