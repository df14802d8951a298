"""Serve the runbook's flows as deployments (named as in prefect.yaml) against PREFECT_API_URL."""

from prefect import serve

from flows.api_integration import api_integration
from flows.process_upload import process_upload
from flows.setup_guides import setup_guides
from flows.sftp_integration import sftp_integration
from flows.status_board import status_board
from flows.update_mapping import update_mapping

if __name__ == "__main__":
    serve(
        setup_guides.to_deployment(name="setup-guides"),
        api_integration.to_deployment(name="api-integration"),
        sftp_integration.to_deployment(name="sftp-integration"),
        process_upload.to_deployment(name="process-upload"),
        status_board.to_deployment(name="status-board"),
        update_mapping.to_deployment(name="update-mapping"),
        limit=8,
    )
