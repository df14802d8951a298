"""SFTP stand-in: OpenSSH sshd with `internal-sftp` from a throwaway config when it is installed
(Debian's openssh-server), else an asyncssh server. Either serves a folder of the real filesystem
on 127.0.0.1, with key-only login and its own host key. The asyncssh server can inject faults into
renames (the claim of an upload): `SftpSandbox.inject`."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

RENAME_FAULTS = ("hang", "drop", "timeout_after_acting", "lost_answer")
SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def _keypair() -> tuple[str, str]:
    """(private key in OpenSSH PEM, public key line 'ssh-ed25519 AAAA…')."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SftpSandbox:
    """A running server: what a client needs to connect, and `stop()`."""

    port: int
    root: Path  # the folder clients see (absolute paths: use `root` as the inbox root)
    username: str
    client_private_key: str
    host_key: str  # the public host key line to pin
    kind: str  # "openssh" or "asyncssh"
    _stop: object = None
    faults: list = field(default_factory=list)  # [kind, times left, hang seconds]; asyncssh only
    faults_served: list = field(default_factory=list)
    fallback: str = ""  # why OpenSSH was asked for and asyncssh serves instead ("" when it did not)

    def stop(self) -> None:
        self._stop()

    def inject(self, fault: str, times: int = 1, hang_seconds: float = 30.0) -> None:
        """Serve `fault` to the next `times` renames (asyncssh server only).

        hang: no answer for `hang_seconds`, not renamed; drop: the connection is closed, not renamed;
        timeout_after_acting: renamed, then no answer for `hang_seconds`; lost_answer: renamed, then
        the connection is closed (the server went away mid-claim).
        """
        if self.kind != "asyncssh":
            raise RuntimeError(
                "faults are injected into the asyncssh server: start it with prefer='asyncssh'"
            )
        if fault not in RENAME_FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(RENAME_FAULTS)}")
        self.faults.append([fault, times, hang_seconds])

    def block(self, **overrides):
        """An SFTP Server block that connects to this server with the pinned host key."""
        from blocks.sftp import SftpServer

        settings = dict(
            host="127.0.0.1",
            port=self.port,
            username=self.username,
            private_key=self.client_private_key,
            host_key=self.host_key,
            inbox_root=str(self.root),
        )
        return SftpServer(**{**settings, **overrides})


def start_sftp_server(
    root: Path,
    port: int = 0,
    prefer: str = "openssh",
    keys_dir: Path | None = None,
    log_file: Path | None = None,
) -> SftpSandbox:
    """Serve `root` over SFTP on 127.0.0.1 (port 0: a free one); sshd logs logins to `log_file` if given."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    keys_dir = Path(keys_dir or tempfile.mkdtemp(prefix="sftp-keys-"))
    keys_dir.mkdir(parents=True, exist_ok=True)
    host_private, host_public = _stored_keypair(keys_dir / "host_key")
    client_private, client_public = _stored_keypair(keys_dir / "client_key")
    port = port or _free_port()
    fallback = ""
    if prefer == "openssh" and not SSHD:
        fallback = "sshd is not installed (apt-get install openssh-server)"
    elif prefer == "openssh":
        try:
            return _start_sshd(root, port, keys_dir, host_public, client_private, client_public, log_file)
        except (OSError, RuntimeError) as error:  # e.g. not root (sshd needs /run/sshd)
            fallback = f"sshd did not start: {' '.join(str(error).split())[:300]}"
    # the same keys served by asyncssh; `fallback` says why, for whoever needs OpenSSH itself
    server = _start_asyncssh(root, port, host_private, host_public, client_private, client_public)
    server.fallback = fallback
    return server


def _stored_keypair(path: Path) -> tuple[str, str]:
    """A keypair kept on disk, so a restarted sandbox keeps the host key clients pinned."""
    if not path.exists():
        private, public = _keypair()
        path.write_text(private)
        path.chmod(0o600)
        path.with_suffix(".pub").write_text(public + "\n")
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


def _start_sshd(
    root, port, keys_dir, host_public, client_private, client_public, log_file=None
) -> SftpSandbox:
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    (keys_dir / "authorized_keys").write_text(client_public + "\n")
    user = getpass.getuser()
    config = keys_dir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {keys_dir / 'host_key'}",
                f"PidFile {keys_dir / 'sshd.pid'}",
                f"AuthorizedKeysFile {keys_dir / 'authorized_keys'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {user}",
                "UsePAM no",
                "StrictModes no",
                "Subsystem sftp internal-sftp",
                "ForceCommand internal-sftp",
                "AllowTcpForwarding no",
                "X11Forwarding no",
                "MaxStartups 100:30:200",
                "MaxSessions 50",
                "LogLevel INFO" if log_file else "LogLevel ERROR",
                "",
            ]
        )
    )
    command = [SSHD, "-D", "-f", str(config)] + (["-E", str(log_file)] if log_file else ["-e"])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60  # a busy machine: a timeout here means asyncssh serves instead
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            error = (
                process.stderr.read().decode(errors="replace") if process.poll() is not None else "timeout"
            )
            process.kill()
            raise RuntimeError(f"sshd did not start: {error.strip()[:500]}")
        time.sleep(0.02)

    def stop() -> None:
        process.terminate()
        process.wait(60)

    return SftpSandbox(port, root, user, client_private, host_public, "openssh", stop)


def _faulty_sftp_server(faults: list, served: list):
    """An asyncssh SFTP server whose renames serve the injected faults, oldest first."""
    import asyncssh

    class FaultySFTPServer(asyncssh.SFTPServer):
        async def _rename_with_faults(self, rename, oldpath: bytes, newpath: bytes) -> None:
            fault = next((f for f in faults if f[1] > 0), None)
            if fault is None:
                return rename(oldpath, newpath)
            fault[1] -= 1
            served.append(fault[0])
            kind, hang_seconds = fault[0], fault[2]
            if kind in ("timeout_after_acting", "lost_answer"):
                rename(oldpath, newpath)
            if kind in ("hang", "timeout_after_acting"):
                await asyncio.sleep(hang_seconds)
                raise asyncssh.SFTPFailure("injected hang")
            self.connection.abort()  # drop, lost_answer
            raise asyncssh.SFTPConnectionLost("injected drop")

        def posix_rename(self, oldpath: bytes, newpath: bytes):
            return self._rename_with_faults(super().posix_rename, oldpath, newpath)

        def rename(self, oldpath: bytes, newpath: bytes):
            return self._rename_with_faults(super().rename, oldpath, newpath)

    return FaultySFTPServer


def _start_asyncssh(root, port, host_private, host_public, client_private, client_public) -> SftpSandbox:
    import asyncssh

    faults: list = []
    served: list = []
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict = {}

    async def serve() -> None:
        holder["server"] = await asyncssh.listen(
            "127.0.0.1",
            port,
            server_host_keys=[asyncssh.import_private_key(host_private)],
            authorized_client_keys=asyncssh.import_authorized_keys(client_public + "\n"),
            sftp_factory=_faulty_sftp_server(faults, served),
            allow_scp=False,
        )
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        loop.run_forever()

    threading.Thread(target=run, name="asyncssh-sftp", daemon=True).start()
    if not ready.wait(60):
        raise RuntimeError("asyncssh SFTP server did not start")

    async def shutdown() -> None:
        holder["server"].close()
        await holder["server"].wait_closed()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # open sessions: end them rather than leave them pending
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)

    return SftpSandbox(
        port, root, getpass.getuser(), client_private, host_public, "asyncssh", stop, faults, served
    )
