"""Serve the runbook's flows as deployments (named as in prefect.yaml) against PREFECT_API_URL."""

from prefect import serve

from flows.api_integration import api_integration
from flows.setup_guides import setup_guides

if __name__ == "__main__":
    serve(
        setup_guides.to_deployment(name="setup-guides"),
        api_integration.to_deployment(name="api-integration"),
        limit=6,
    )
