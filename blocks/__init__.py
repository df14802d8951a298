"""One Prefect Block per external system: configuration and secrets only, plus get_client()."""

from __future__ import annotations

from typing import TypeVar

from prefect.blocks.core import Block

from blocks.google_sheets import GoogleSheetsCredentials
from blocks.hub import TenKCHub
from blocks.sftp import SftpServer
from blocks.slack import SlackWorkspace
from blocks.smtp import SmtpServer
from blocks.web_app import WebApp
from blocks.workos import WorkOSCredentials

# The one list of block types: `make up` and `hris-runbook doctor` read it (cli/bootstrap.py `block_types`),
# the sandbox makes one block of each (tests/test_blocks.py holds it to this list).
REQUIRED_BLOCKS: list[type[Block]] = [
    SmtpServer,
    SlackWorkspace,
    GoogleSheetsCredentials,
    WorkOSCredentials,
    WebApp,
]
# Allowed to be missing: without the hub the CSM gets the checklist, without an SFTP Server only the
# SFTP path cannot run.
OPTIONAL_BLOCKS: list[type[Block]] = [TenKCHub, SftpServer]
ALL_BLOCKS: list[type[Block]] = [*REQUIRED_BLOCKS, *OPTIONAL_BLOCKS]
DEFAULT_NAME = "default"

B = TypeVar("B", bound=Block)


class BlockNotConfigured(RuntimeError):
    """The flows need a block document that nobody has saved yet."""


def load_block(block_type: type[B], name: str = DEFAULT_NAME) -> B:
    """Load a block document, or say which one is missing and how to create it."""
    try:
        return block_type.load(name)
    except ValueError as exc:
        if "Unable to find block document" not in str(exc):
            raise
        raise BlockNotConfigured(
            f"No {block_type.get_block_type_name()} block named {name!r}: create it in the Prefect UI "
            "(Blocks) or run `make up`, which saves the sandbox one"
        ) from None


def optional_block(block_type: type[B], name: str = DEFAULT_NAME) -> B | None:
    """A block that is allowed to be missing (the hub API): None when nobody configured it."""
    try:
        return load_block(block_type, name)
    except BlockNotConfigured:
        return None


__all__ = [
    "ALL_BLOCKS",
    "DEFAULT_NAME",
    "OPTIONAL_BLOCKS",
    "REQUIRED_BLOCKS",
    "BlockNotConfigured",
    "GoogleSheetsCredentials",
    "SftpServer",
    "SlackWorkspace",
    "SmtpServer",
    "TenKCHub",
    "WebApp",
    "WorkOSCredentials",
    "load_block",
    "optional_block",
]
