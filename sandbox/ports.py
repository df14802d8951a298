"""Loopback ports the stand-ins use under `make up` (tests pick free ports instead)."""

import os

SMTP_PORT = int(os.environ.get("HRIS_SANDBOX_SMTP_PORT", "8025"))
SLACK_PORT = int(os.environ.get("HRIS_SANDBOX_SLACK_PORT", "8026"))
SHEETS_PORT = int(os.environ.get("HRIS_SANDBOX_SHEETS_PORT", "8027"))
HUB_PORT = int(os.environ.get("HRIS_SANDBOX_HUB_PORT", "8028"))
WORKOS_PORT = int(os.environ.get("HRIS_SANDBOX_WORKOS_PORT", "8029"))
SETUP_LINKS_PORT = int(os.environ.get("HRIS_SETUP_LINKS_PORT", "8030"))
WEB_INTERNAL_PORT = int(os.environ.get("HRIS_WEB_INTERNAL_PORT", "8031"))  # the status board, 127.0.0.1
SFTP_PORT = int(os.environ.get("HRIS_SANDBOX_SFTP_PORT", "8022"))

SLACK_TOKEN = "xoxb-sandbox"
HUB_TOKEN = "hub-sandbox-token"
WORKOS_KEY = "sk_test_sandbox"
SANDBOX_CHANNELS = ["general", "product-support", "monitoring-hris-files", "am-acme", "am-demo"]
DEMO_SHEET_KEY = "SANDBOXdemoMappingTable0001"
# The incoming webhook the sandbox's monitoring notification block posts to (#monitoring-hris-files).
MONITORING_WEBHOOK_PATH = "/services/T0SANDBOX/B0MONITOR/sandboxmonitoringwebhook"
