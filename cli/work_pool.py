"""The process work pool `make up` runs every flow on: each flow run (a CSM's Resume included) starts
as one process of this interpreter: forked warm by cli/warm_start.py through `python -m
cli.warm_run`, or `python -m prefect.engine` without it (HRIS_WARM_START=0, not Linux) (issue 24).

Left without a command, Prefect 3.9's process worker starts each run as a workspace supervisor
(`python -m prefect.runner._workspace_supervisor`: imports Prefect, reads the run and its
deployment, runs the pull step) that then `exec`s a second interpreter for `prefect.engine`,
which imports Prefect again and the flow: ~1 s of CPU more per run than the engine alone. With the
pool's `command` set to the engine, the engine process reads the deployment and runs the pull step
itself (`set_working_directory` in prefect.yaml) before it imports the flow, as Prefect's process
worker did before 3.9. Nothing else changes: the worker still opens one process per run and
watches it; cancellation still goes through the worker's control channel.
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import WorkPool


def engine_command() -> str:
    """The command each flow run starts with: this interpreter (the runbook's venv) running the engine."""
    return shlex.join([sys.executable, "-m", "prefect.engine"])


def process_pool_template(command: str | None = None) -> dict[str, Any]:
    """Prefect's process base job template with `command` (default `engine_command()`) as the
    command's default."""
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    _command_variable(template)["default"] = command or engine_command()
    return template


def ours(command: str | None) -> bool:
    """None, or a command `make up` on this checkout wrote (this interpreter running the engine or
    the warm launcher): one it may replace. Any other is an operator's (docs/deploy.md) and stays."""
    if not command:
        return True
    words = shlex.split(command)
    return words[:1] == [sys.executable] and words[1:3] in (["-m", "prefect.engine"], ["-m", "cli.warm_run"])


def ensure_work_pool(client: SyncPrefectClient, name: str, command: str | None = None) -> str:
    """Creates the process pool `name` with `process_pool_template(command)`, or on an existing
    process pool sets only the command's default, and only over one of ours: what an operator set
    (their command, environment, pause, limit) stays. Says what it did, in a few words."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    command = command or engine_command()
    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        client.create_work_pool(
            WorkPoolCreate(name=name, type="process", base_job_template=process_pool_template(command))
        )
        return "created"
    if pool.type != "process":
        return f"a {pool.type} pool: left as it is"
    if not ours(_command_variable(_template(pool)).get("default")):
        return "the operator's command kept"
    return "command set" if _set_command(client, pool, command) else "unchanged"


def set_pool_command(name: str, command: str | None) -> None:
    """Make `command` the default of the process pool's `command` variable, whatever it was (None:
    Prefect's own): the benchmarks and tests that compare ways of starting a run."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        _set_command(client, client.read_work_pool(name), command)


def _template(pool: WorkPool) -> dict[str, Any]:
    """The pool's base job template; a pool created before any worker ran has none yet: the one the
    worker would fill in."""
    from prefect.workers.process import ProcessWorker

    return pool.base_job_template or ProcessWorker.get_default_base_job_template()


def _command_variable(template: dict[str, Any]) -> dict[str, Any]:
    return template["variables"]["properties"]["command"]


def _set_command(client: SyncPrefectClient, pool: WorkPool, command: str | None) -> bool:
    """Set the command's default on `pool` (one update, none when it already is); whether it changed."""
    from prefect.client.schemas.actions import WorkPoolUpdate

    template = _template(pool)
    variable = _command_variable(template)
    if variable.get("default") == command:
        return False
    variable["default"] = command
    client.update_work_pool(pool.name, WorkPoolUpdate(base_job_template=template))
    return True
