"""A tiny once-only step for the lock tests: `python -m tests.once_step KEY OUT_DIR [--block|--slow]`.

The flow notes in OUT_DIR/flows that it began, the step in OUT_DIR/started; with --block it then
waits for ever (the test kills it there), with --slow until OUT_DIR/go exists; then it appends one
line to OUT_DIR/sent, the side effect counted by the test.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from prefect import flow

from tasks.once import once_task


@once_task("send-once")
def send_once(once_key: str, out_dir: str, block: bool, slow: bool = False) -> str:
    out = Path(out_dir)
    with (out / "started").open("a") as started:
        started.write("started\n")
    while block or (slow and not (out / "go").exists()):
        time.sleep(0.1)
    with (out / "sent").open("a") as sent:
        sent.write("sent\n")
    return "sent"


@flow(name="once-step")
def once_step(once_key: str, out_dir: str, block: bool = False, slow: bool = False) -> str:
    with (Path(out_dir) / "flows").open("a") as flows:
        flows.write("flow\n")
    return send_once(once_key, out_dir, block, slow)


if __name__ == "__main__":
    key, out_dir, block, slow = sys.argv[1], sys.argv[2], "--block" in sys.argv[3:], "--slow" in sys.argv[3:]
    state = once_step(key, out_dir, block, slow, return_state=True)
    print(state.message or state.type.value, flush=True)
    sys.exit(0 if state.is_completed() else 1)
