"""Loopback ports the stand-ins use under `make up` (tests pick free ports instead)."""

import os

SMTP_PORT = int(os.environ.get("HRIS_SANDBOX_SMTP_PORT", "8025"))
