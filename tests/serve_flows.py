"""Serve the runbook's flows as deployments against the API in PREFECT_API_URL (test helper)."""

from prefect import serve

from flows.setup_guides import setup_guides

if __name__ == "__main__":
    serve(setup_guides.to_deployment(name="test"), limit=4)
