"""The SFTP server customers upload their HRIS CSVs to (one inbox folder per customer)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, field_validator

if TYPE_CHECKING:
    import paramiko

# paramiko is imported where a key or a connection is made: every flow-run process loads blocks
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


class SftpServer(Block):
    """SFTP server with a pinned host key: an unknown or changed host key is refused, never trusted.

    Example:
        ```python
        from blocks.sftp import SftpServer
        sftp = SftpServer.load("default")
        with sftp.get_client() as client:
            client.listdir(sftp.inbox_root)
        ```
    """

    _block_type_name = "SFTP Server"
    _description = "SFTP server holding one inbox folder per customer for HRIS CSV uploads."
    model_config = ConfigDict(hide_input_in_errors=True)  # errors never echo a secret

    host: str = Field(title="SFTP host", description="Host name or address")
    port: int = Field(title="SFTP port", default=22, ge=1, le=65535, description="SSH port")
    username: str = Field(title="Username", description="Login user")
    private_key: SecretStr = Field(
        title="Private key", description="Private key (OpenSSH or PEM format) for the login"
    )
    private_key_passphrase: SecretStr | None = Field(
        title="Private key passphrase", default=None, description="Passphrase of the key, if any"
    )
    host_key: str = Field(
        title="Host key",
        description="The server's public host key as in known_hosts, e.g. 'ssh-ed25519 AAAA…' (required: "
        "get it from the server's admin, or `ssh-keyscan -t ed25519 host`)",
    )
    inbox_root: str = Field(
        title="Inbox root", default="/inbox", description="Folder holding one inbox folder per customer"
    )
    max_upload_mb: int = Field(
        title="Max upload (MB)", default=500, ge=1, description="Uploads larger than this are refused"
    )
    connect_timeout_seconds: float = Field(
        title="Connect timeout (seconds)",
        default=15,
        gt=0,
        description="TCP connect, banner and auth timeout",
    )
    keepalive_seconds: int = Field(
        title="Keepalive (seconds)", default=30, ge=0, description="SSH keepalive interval (0: off)"
    )

    @field_validator("host_key")
    @classmethod
    def _host_key_line(cls, value: str) -> str:
        parts = value.split()
        if len(parts) >= 3 and parts[1] in KEY_TYPES:  # a known_hosts line with the host name first
            parts = parts[1:]
        if len(parts) < 2 or parts[0] not in KEY_TYPES:
            raise ValueError("host_key must look like 'ssh-ed25519 AAAA…' (key type, then the base64 key)")
        return f"{parts[0]} {parts[1]}"

    def _pinned_key(self) -> paramiko.PKey:
        import paramiko

        key_type, data = self.host_key.split()
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(data))

    def _login_key(self) -> paramiko.PKey:
        import paramiko

        passphrase = self.private_key_passphrase.get_secret_value() if self.private_key_passphrase else None
        text = self.private_key.get_secret_value()
        for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
            try:
                return key_class.from_private_key(io.StringIO(text), password=passphrase)
            except paramiko.SSHException:
                continue
        raise ValueError("private_key is not a readable Ed25519, ECDSA or RSA private key")

    @contextmanager
    def get_client(self) -> Iterator[paramiko.SFTPClient]:
        """An SFTP session; the connection is closed when the block exits."""
        import paramiko

        ssh = paramiko.SSHClient()
        ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
        known = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        ssh.get_host_keys().add(known, self.host_key.split()[0], self._pinned_key())
        ssh.connect(
            self.host,
            port=self.port,
            username=self.username,
            pkey=self._login_key(),
            allow_agent=False,
            look_for_keys=False,
            timeout=self.connect_timeout_seconds,
            banner_timeout=self.connect_timeout_seconds,
            auth_timeout=self.connect_timeout_seconds,
            channel_timeout=self.connect_timeout_seconds,
        )
        try:
            if self.keepalive_seconds:
                ssh.get_transport().set_keepalive(self.keepalive_seconds)
            sftp = ssh.open_sftp()
            sftp.get_channel().settimeout(self.connect_timeout_seconds * 4)
            yield sftp
        finally:
            ssh.close()
