"""`sftp-watch` (every 15 minutes, one run at a time): polls every registered customer's inbox.

Each complete new upload is claimed (an atomic rename, so overlapping runs cannot both take it),
announced to engineering in Slack (SFTP step 7) and handed to `process-upload` as a deployment
run. One connection per SFTP server; servers are polled concurrently with a bound, and a broken
server or inbox is reported without stopping the others.
"""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.deployments import run_deployment

from blocks import BlockNotConfigured, SftpServer, SlackWorkspace, load_block, optional_block
from tasks.registry import Registration, registrations
from tasks.sftp import claim, inbox_path, look, refusal_reason, refuse, settled
from tasks.slack import Slack, SlackError
from tasks.templating import render


def _poll_server(block_name: str, customers: list[Registration], settle_seconds: float) -> list[dict]:
    """Look at every inbox on one server, wait once, look again, then claim or refuse what settled."""
    try:
        server = load_block(SftpServer, block_name)
    except BlockNotConfigured as exc:
        return [{"customer": r.customer.key, "error": str(exc)} for r in customers]
    results: list[dict] = []
    try:
        with server.get_client() as sftp:
            first: dict[str, dict] = {}
            for reg in customers:
                inbox = inbox_path(server.inbox_root, reg.customer.key)
                try:
                    first[reg.customer.key] = look(sftp, inbox)
                except OSError as exc:
                    results.append(
                        {"customer": reg.customer.key, "error": f"inbox {inbox}: {exc.__class__.__name__}"}
                    )
            waiting = {key: seen for key, seen in first.items() if seen}
            if waiting:
                time.sleep(settle_seconds)
            by_key = {r.customer.key: r for r in customers}
            for key, seen in waiting.items():
                inbox = inbox_path(server.inbox_root, key)
                try:
                    done = settled(seen, look(sftp, inbox))
                except OSError as exc:
                    results.append({"customer": key, "error": f"inbox {inbox}: {exc.__class__.__name__}"})
                    continue
                for upload in done:
                    reason = refusal_reason(upload.name, upload.size, server.max_upload_mb * 2**20)
                    if reason:
                        refuse(sftp, inbox, upload.name)
                        results.append(
                            {"customer": key, "upload": upload.name, "refused": reason, "reg": by_key[key]}
                        )
                    elif claim(sftp, inbox, upload.name):
                        results.append(
                            {"customer": key, "upload": upload.name, "size": upload.size, "reg": by_key[key]}
                        )
    except Exception as exc:  # one broken server must not stop the others
        results.append(
            {"customer": ", ".join(r.customer.key for r in customers), "error": f"{block_name}: {exc!r}"}
        )
    return results


def _alert(slack: Slack | None, channel: str, text: str) -> None:
    logger = get_run_logger()
    if slack is None:
        logger.warning("No Slack configured; alert not sent: %s", text)
        return
    try:
        slack.post(channel, text)
    except SlackError as exc:
        logger.warning("Slack alert failed: %s", exc)


@flow(name="sftp-watch")
def sftp_watch(
    settle_seconds: float = 5, max_parallel_servers: int = 8, start_processing: bool = True
) -> dict:
    """One tick: claim complete uploads, alert engineering, start process-upload for each."""
    logger = get_run_logger()
    customers = [reg for reg in registrations() if reg.watching]
    by_server: dict[str, list[Registration]] = defaultdict(list)
    for reg in customers:
        by_server[reg.sftp_block].append(reg)
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel_servers, len(by_server) or 1))) as pool:
        batches = pool.map(lambda item: _poll_server(item[0], item[1], settle_seconds), by_server.items())
        results = [result for batch in batches for result in batch]

    workspace = optional_block(SlackWorkspace)
    slack = Slack(workspace) if workspace else None
    alerts = workspace.monitoring_channel if workspace else "#monitoring-hris-files"
    rows = []
    for result in results:
        reg: Registration | None = result.pop("reg", None)
        if "error" in result:
            logger.error("Could not poll %s: %s", result["customer"], result["error"])
            _alert(
                slack,
                alerts,
                render("slack/poll_error.md.j2", customers=result["customer"], error=result["error"]),
            )
        elif "refused" in result:
            text = render(
                "slack/upload_refused.md.j2",
                company=reg.customer.company_name,
                upload=result["upload"],
                reason=result["refused"],
            )
            _alert(slack, alerts, text)
        else:
            run_id = ""
            if start_processing:
                run = run_deployment(
                    "process-upload/process-upload",
                    parameters={"customer_key": reg.customer.key, "upload": result["upload"]},
                    timeout=0,
                    as_subflow=False,
                )
                run_id = str(run.id)
            text = render(
                "slack/upload_received.md.j2",
                company=reg.customer.company_name,
                mode=reg.mode,
                upload=result["upload"],
                size_mib=result["size"] / 2**20,
                run_id=run_id,
            )
            _alert(slack, alerts, text)
            result["process_upload_run"] = run_id
        rows.append({k: str(v) for k, v in result.items()})
    create_table_artifact(
        key="sftp-watch", table=rows or [{"result": "no new uploads"}], description="Last watch tick"
    )
    summary = {
        "customers": len(customers),
        "servers": len(by_server),
        "claimed": sum(1 for r in rows if "upload" in r and "refused" not in r),
        "refused": sum(1 for r in rows if "refused" in r),
        "errors": sum(1 for r in rows if "error" in r),
    }
    logger.info("SFTP watch: %s", summary)
    return summary
