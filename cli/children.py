"""The processes `make up` starts, each leading its own process group, and the terminal it takes so
that Ctrl-C reaches `up` alone; apart from cli/stack.py, which decides what to start."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

STOP_GRACE_SECONDS = 5.0


class Children:
    """The processes `up` started, each leading its own process group (the server's and the
    worker's subprocesses included), stopped together with a bounded wait."""

    def __init__(self, cwd: Path | None = None) -> None:
        self.cwd = cwd
        self.processes: list[subprocess.Popen] = []

    def start(self, command: list[str], log_path: Path) -> subprocess.Popen:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def _signal_all(self, sig: int) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass  # the whole group is gone already

    def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM every group, wait up to `grace_seconds` in all, then SIGKILL what is left."""
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self._signal_all(signal.SIGKILL)  # stragglers, and any grandchild left behind by its parent
        for process in self.processes:
            process.wait()


def take_terminal() -> tuple[int, int] | None:
    """Run in our own foreground process group, so Ctrl-C in `make up` reaches `up` and not make:
    make then exits with our status (0) instead of dying of the interrupt. None when not needed."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return None  # no terminal (tests, services)
    previous = os.getpgrp()
    if os.tcgetpgrp(tty) != previous or previous == os.getpid():
        os.close(tty)  # in the background, or already leading our own group (started from a shell)
        return None
    os.setpgid(0, 0)
    _set_foreground(tty, os.getpgrp())
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)  # Ctrl-Z would stop us with make still waiting
    return tty, previous


def _set_foreground(tty: int, group: int) -> None:
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not otherwise
    try:
        os.tcsetpgrp(tty, group)
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, old)


def give_back_terminal(taken: tuple[int, int] | None) -> None:
    if taken:
        tty, previous = taken
        _set_foreground(tty, previous)
        os.close(tty)
