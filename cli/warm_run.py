"""The work pool's flow-run command with a warm start (issue 24): `python -m cli.warm_run SOCKET`.

Standard library only, so it starts in milliseconds. It asks the warm starter (cli/warm_start.py)
listening on SOCKET to fork an engine that already imported Prefect, handing over its environment,
working directory, umask and stdin/stdout/stderr; it then forwards SIGTERM/SIGINT/SIGHUP to that
engine and exits as the engine did (its exit code, or the same signal). When there is no starter,
or it declines, it becomes `python -m prefect.engine` itself (os.execv): the cold start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
from typing import BinaryIO

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
CONNECT_SECONDS = 2.0
REPLY_SECONDS = 10.0  # a starter that has not answered by then is stuck: start cold


def cold(args: list[str]) -> None:
    """The cold start: this process becomes `python -m prefect.engine`."""
    os.execv(sys.executable, [sys.executable, "-m", "prefect.engine", *args])


def request(args: list[str]) -> bytes:
    umask = os.umask(0o022)
    os.umask(umask)
    body = {
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "args": args,
        "umask": umask,
        "executable": sys.executable,
    }
    return json.dumps(body).encode()


def hand_over(path: str, args: list[str]) -> tuple[socket.socket, BinaryIO] | None:
    """The connection to the forked engine's supervisor, or None when the warm starter is not there,
    declines or does not answer in time (then no engine was forked)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_SECONDS)
        sock.connect(path)
        body = request(args)
        socket.send_fds(sock, [struct.pack("!I", len(body))], [0, 1, 2])
        sock.sendall(body)
        sock.settimeout(REPLY_SECONDS)
        reader = sock.makefile("rb")
        reply = reader.readline().decode().split()
        if reply != ["ok"]:
            sock.close()
            return None
        # Committed from here: the engine is forked only on this "go", so a launcher that gave up
        # above (and starts cold) can never have a warm twin running too.
        sock.sendall(b"go\n")
    except OSError:
        sock.close()
        return None
    sock.settimeout(None)
    return sock, reader


class Signals:
    """SIGTERM/SIGINT/SIGHUP caught from the start: kept until the engine is there, then sent on."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.sock: socket.socket | None = None
        for signum in FORWARDED:
            signal.signal(signum, self.caught)

    def caught(self, signum: int, _frame: object) -> None:
        if self.sock is None:
            self.pending.append(signum)
            return
        try:
            self.sock.sendall(f"signal {signum}\n".encode())
        except OSError:
            pass

    def forward_to(self, sock: socket.socket) -> None:
        self.sock = sock
        for signum in self.pending:
            self.caught(signum, None)

    def restore(self) -> None:
        """Before starting cold: the defaults again, and a signal that came meanwhile ends us as it
        would have ended an engine that had not started yet."""
        for signum in FORWARDED:
            signal.signal(signum, signal.SIG_DFL)
        for pending in self.pending:
            os.kill(os.getpid(), pending)


def wait(reader: BinaryIO) -> int:
    """The engine's wait status as its supervisor sends it; -1 when that side ended without one."""
    for line in reader:
        words = line.decode().split()
        if len(words) == 2 and words[0] == "exit":
            return int(words[1])
    return -1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m cli.warm_run SOCKET [engine arguments]", file=sys.stderr)
        return 2
    path, args = argv[0], argv[1:]
    signals = Signals()
    handed = hand_over(path, args)
    if handed is None:
        signals.restore()
        cold(args)
        return 1  # not reached
    sock, reader = handed
    signals.forward_to(sock)
    status = wait(reader)
    if status == -1:
        print("warm start: the engine's supervisor ended without a status", file=sys.stderr)
        return 1
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)  # end as the engine did
        return 128 + signum
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
