"""Signed, expiring download links for review files too large to attach to an email (the SFTP review
email's three files from the sample): the link a flow emails (`review_download_link`) and what a
token stands for (`read_download_link`). The page that serves the files is webapp/review_files.py.

The token (tasks/tokens.py, purpose `review-files-download`: it opens no other page, and no other
page's token opens this one) names the customer, the folder of files under the files dir, the file
names and the expiry; it carries no member data. Prefect's forms, artifacts and logs show
DOWNLOAD_LINK_SHOWN instead of the link: only the email carries it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tasks.export_links import _folder_name
from tasks.tokens import LinkError, seal, unseal

PURPOSE = "review-files-download"
INVALID = "This download link is not valid. Please ask your 10KC contact for a new one."
EXPIRED = (  # {date}: the day it expired, so the person can say which link they mean
    "This download link expired on {date}. Please reply to the email it came in, or write to your "
    "10KC contact, and they will send you a new one."
)
DOWNLOAD_LINK_SHOWN = "⟨download link: sent in the email⟩"
DEFAULT_DAYS = 14


@dataclass(frozen=True)
class DownloadLink:
    """What a valid download link stands for: files in `<files dir>/<customer key>/<folder>/`."""

    customer_key: str
    folder: str
    files: tuple[str, ...]
    expires_at: int

    def path(self, root: Path, index: int) -> Path:
        return root / self.customer_key / self.folder / self.files[index]


def download_link(
    base_url: str,
    secret: str,
    customer_key: str,
    folder: str,
    files: list[str],
    days: int = DEFAULT_DAYS,
    now: float | None = None,
) -> str:
    """A link to a page offering `files` of `<files dir>/<customer_key>/<folder>/`, valid `days`."""
    text = json.dumps(
        {
            "customer": _folder_name("customer key", customer_key),
            "folder": _folder_name("folder", folder),
            "files": [_folder_name("file name", name) for name in files],
            "expires": int((now or time.time()) + days * 86400),
        },
        separators=(",", ":"),
    )
    return f"{base_url.rstrip('/')}/review-files/{seal(secret, text, PURPOSE)}"


def review_download_link(
    customer_key: str, files: list[Path], days: int = DEFAULT_DAYS, block_name: str = "default"
) -> str:
    """`download_link` for `files` (in one folder `<files dir>/<customer_key>/<folder>/`), with the Web
    App block's URL and key (or the WorkOS block's setup-links ones)."""
    from blocks.web_app import load_web_app

    [folder] = {Path(f).parent for f in files}
    web = load_web_app(block_name)
    return download_link(
        web.url,
        web.signing_secret.get_secret_value(),
        customer_key,
        folder.name,
        [Path(f).name for f in files],
        days,
    )


def read_download_link(secret: str | Sequence[str], token: str, now: float | None = None) -> DownloadLink:
    """The link a token stands for; LinkError 403 (not ours, or another page's) or 410 (expired)."""
    try:
        fields = json.loads(unseal(secret, token, INVALID, PURPOSE))
        link = DownloadLink(
            customer_key=_folder_name("customer key", fields["customer"]),
            folder=_folder_name("folder", fields["folder"]),
            files=tuple(_folder_name("file name", name) for name in fields["files"]),
            expires_at=int(fields["expires"]),
        )
    except (ValueError, KeyError, TypeError):
        raise LinkError(403, INVALID) from None
    if (now or time.time()) > link.expires_at:
        date = datetime.fromtimestamp(link.expires_at, UTC).strftime("%d %B %Y")
        raise LinkError(410, EXPIRED.format(date=date))
    return link
