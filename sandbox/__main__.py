"""Run every stand-in on 127.0.0.1 until interrupted: `python -m sandbox --state .sandbox`.

Where to look while `make up` runs:
- emails:         <state>/mail/*.eml
- Slack messages: <state>/slack/messages.jsonl
                  (channels #product-support, #monitoring-hris-files, #am-acme, #am-demo)
- mapping sheets: every <state>/sheets/<key>.csv is served as the Google Sheet with that key; a demo
                  sheet is at https://docs.google.com/spreadsheets/d/SANDBOXdemoMappingTable0001/edit
- hub, WorkOS:    organizations, segments and members live in memory; the runs' artifacts show them
- setup links:    `hris-runbook setup-links` on port 8030 (started by make up) redirects to the
                  WorkOS stand-in's portal
- SFTP:           <state>/sftp/<customer key>/ are the inboxes (sshd on port 8022, or asyncssh);
                  drop a CSV there to play the customer
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import threading
from pathlib import Path

from sandbox import ports
from sandbox.hub import HubStandIn
from sandbox.sftp import start_sftp_server
from sandbox.sheets import SheetsStandIn
from sandbox.slack import SlackStandIn
from sandbox.smtp import MAX_MESSAGE_BYTES, start_smtp
from sandbox.workos import WorkOSStandIn

DEMO_TABLE = [
    ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"],
    ["Organisation", "Department", "Engineering", "", "", "", "Public"],
    ["", "", "Sales", "", "", "", ""],
    ["", "", "People", "", "", "", ""],
    ["Location", "Location", "LDN", "", "Office", "London", "Private"],
    ["", "", "PAR", "", "", "Paris", ""],
]


def start_all(state: Path, smtp_max_mb: float = MAX_MESSAGE_BYTES / 2**20) -> list:
    """Start the stand-ins on their fixed ports; returns objects with .stop()."""
    smtp = start_smtp(state / "mail", ports.SMTP_PORT, max_message_bytes=int(smtp_max_mb * 2**20))
    slack = SlackStandIn(token=ports.SLACK_TOKEN, log_dir=state / "slack", page_size=100)
    for name in ports.SANDBOX_CHANNELS:
        slack.add_channel(name)
    slack.start(ports.SLACK_PORT)
    slack.incoming_webhook(
        "monitoring-hris-files", ports.MONITORING_WEBHOOK_PATH
    )  # Prefect automations post here

    sheets_dir = state / "sheets"
    sheets_dir.mkdir(parents=True, exist_ok=True)
    demo = sheets_dir / f"{ports.DEMO_SHEET_KEY}.csv"
    if not demo.exists():
        with open(demo, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(DEMO_TABLE)
    account = json.loads((state / "service-account.json").read_text())["client_email"]
    sheets = SheetsStandIn(directory=sheets_dir, shared_with=[account])  # read per request
    sheets.start(ports.SHEETS_PORT)

    hub = HubStandIn(token=ports.HUB_TOKEN).start(ports.HUB_PORT)
    workos = WorkOSStandIn(api_key=ports.WORKOS_KEY).start(ports.WORKOS_PORT)
    sftp = start_sftp_server(state / "sftp", ports.SFTP_PORT, keys_dir=state / "sftp-keys")
    return [smtp, slack, sheets, hub, workos, sftp]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--state", type=Path, default=Path(".sandbox"), help="where stand-ins keep state")
    parser.add_argument(
        "--smtp-max-mb",
        type=float,
        default=MAX_MESSAGE_BYTES / 2**20,
        help="the SMTP stand-in's message size limit (advertised as SIZE, 552 above it); default 25",
    )
    args = parser.parse_args()
    running = start_all(args.state, args.smtp_max_mb)
    print(f"sandbox stand-ins running; state in {args.state}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for stand_in in running:
        stand_in.stop()


if __name__ == "__main__":
    main()
