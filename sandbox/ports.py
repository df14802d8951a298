"""Fixed loopback ports the stand-ins use under `make up` (tests pick free ports instead)."""

SMTP_PORT = 8025
