"""Serve the runbook's flows as deployments (named as in prefect.yaml) against PREFECT_API_URL."""

from prefect import serve

from flows.api_integration import api_integration
from flows.mapping_review import mapping_review
from flows.process_upload import process_upload
from flows.setup_guides import setup_guides
from flows.sftp_integration import sftp_integration
from flows.status_board import status_board
from flows.update_mapping import update_mapping

SERVED = [
    setup_guides,
    api_integration,
    sftp_integration,
    process_upload,
    status_board,
    update_mapping,
    mapping_review,
]
# `<flow>/<deployment>` names the tests wait for before they start runs.
DEPLOYMENTS = [f"{flow.name}/{flow.name}" for flow in SERVED]

if __name__ == "__main__":
    serve(*(flow.to_deployment(name=flow.name) for flow in SERVED), limit=8)
