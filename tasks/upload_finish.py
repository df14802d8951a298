"""An upload decided (the runbook's last step for it): its claim moved out of processing/ (to
archive/, or refused/), the applied claim noted, the customer's waiting onboarding run told of its
first production upload, and the next queued upload of the customer let go."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.client.orchestration import get_client

from blocks import SftpServer, load_block
from tasks.approvals import send_signal
from tasks.contracts import ARCHIVE, PROCESSING, PRODUCTION_UPLOAD
from tasks.gate_notices import current_run_id
from tasks.registry import Registration, note_applied, registration, update_registration
from tasks.sftp import archive, inbox_path, original_name, refuse
from tasks.upload_history import APPLIED
from tasks.upload_queue import listed_claims, resume_next_upload
from tasks.uploads import COUNTS, ProductionUpload


def _resume_onboarding_run(reg: Registration, upload: str, summary: dict | None, outcome: str) -> None:
    """The first production upload also finishes the customer's waiting sftp-integration run."""
    current = registration(reg.customer.key)
    if current is None or not current.waiting_run_id:
        return
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(current.waiting_run_id)
    if run.state and not run.state.is_final():
        counts = {k: (summary or {}).get(k, 0) for k in COUNTS}
        value = ProductionUpload(upload=original_name(upload), outcome=outcome, **counts)
        send_signal(run.id, PRODUCTION_UPLOAD, value)
        get_run_logger().info("Resumed the waiting sftp-integration run %s", run.id)
    update_registration(reg.customer.key, waiting_run_id=None, mode="production")


def finish_upload(
    reg: Registration, upload: str, summary: dict | None, outcome: str, to: str = ARCHIVE
) -> None:
    """The upload is decided: move it out of processing/, tell the onboarding run, let the next go."""
    server = load_block(SftpServer, reg.sftp_block)
    inbox = inbox_path(server.inbox_root, reg.customer.key)
    with server.get_client() as sftp:
        moved = archive(sftp, inbox, upload) if to == ARCHIVE else refuse(sftp, inbox, upload, PROCESSING)
        in_processing = listed_claims(sftp, inbox)
    get_run_logger().info("Upload %s: %s; moved to %s", upload, outcome, moved or "(already moved)")
    if outcome.startswith(APPLIED):
        note_applied(reg.customer.key, upload)
    _resume_onboarding_run(reg, upload, summary, outcome)
    if resume_next_upload(reg.customer.key, in_processing, current_run_id()):
        get_run_logger().info("Started the next queued upload of %s", reg.customer.key)
