"""The Prefect UI alone, for the browser test: the session's test server (prefect_test_harness)
serves the API only, so this serves the UI's static files and /ui-settings pointing at that API.

Run as `python -m uvicorn tests.ui_server:app` with PREFECT_UI_API_URL set to the test server's API.
"""

from prefect.server.api.server import create_ui_app

app = create_ui_app(ephemeral=False)
