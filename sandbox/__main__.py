"""Run every stand-in on 127.0.0.1 until interrupted: `python -m sandbox --state .sandbox`."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from sandbox.ports import SMTP_PORT
from sandbox.smtp import start_smtp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state", type=Path, default=Path(".sandbox"), help="where stand-ins keep state")
    args = parser.parse_args()
    smtp = start_smtp(args.state / "mail", SMTP_PORT)
    print(f"sandbox SMTP on 127.0.0.1:{SMTP_PORT}, messages in {args.state / 'mail'}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    smtp.stop()


if __name__ == "__main__":
    main()
