"""A tiny once-only step for the lock tests: `python -m tests.once_step KEY OUT_DIR [--block]`.

The step notes in OUT_DIR/started that it began; with --block it then waits for ever (the test
kills it there), else it appends one line to OUT_DIR/sent, the side effect counted by the test.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from prefect import flow

from tasks.once import once_task


@once_task("send-once")
def send_once(once_key: str, out_dir: str, block: bool) -> str:
    out = Path(out_dir)
    with (out / "started").open("a") as started:
        started.write("started\n")
    while block:
        time.sleep(0.1)
    with (out / "sent").open("a") as sent:
        sent.write("sent\n")
    return "sent"


@flow(name="once-step")
def once_step(once_key: str, out_dir: str, block: bool = False) -> str:
    return send_once(once_key, out_dir, block)


if __name__ == "__main__":
    key, out_dir, block = sys.argv[1], sys.argv[2], "--block" in sys.argv[3:]
    state = once_step(key, out_dir, block, return_state=True)
    print(state.message or state.type.value, flush=True)
    sys.exit(0 if state.is_completed() else 1)
