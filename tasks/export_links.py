"""Signed, single-use links where a CSM hands over the hub's current member export (no hub API):
the link a flow emails (`member_export_link`) and what it answers (`MemberExportReceived`).
The page that takes the upload is webapp/member_exports.py.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from prefect.input import RunInput
from pydantic import Field

from tasks.tokens import LinkError, seal, unseal

PURPOSE = "member-export-page"  # the signing purpose of upload-page links (not the gate)
LEGACY_PURPOSE = "member-export:"  # links emailed before tokens had a key per purpose (they live 7 days)
INVALID = "This upload link is not valid. Please ask your 10KC contact for a new one."

# What artifacts and Slack show instead of the link: the waiting form is the one place it is copied from.
EXPORT_LINK_SHOWN = "⟨upload link: in the form of this run in Prefect⟩"


class MemberExportReceived(RunInput):
    """The hub's current member export, handed over on the signed upload page."""

    export_path: str = Field(
        title="Member export file",
        description="Where the uploaded export is stored (filled in by the upload page)",
    )
    uploaded_by: str = Field(min_length=1, title="Uploaded by", description="Who exported and uploaded it")
    members: int = Field(ge=0, title="Members", description="How many members the export lists")


@dataclass(frozen=True)
class ExportLink:
    """What a valid upload link stands for."""

    flow_run_id: str
    customer_key: str
    upload_id: str
    company_name: str | None
    expires_at: int
    token: str

    def folder(self, root: Path) -> Path:
        return root / self.customer_key / self.upload_id

    def used_marker(self, root: Path) -> Path:
        """Created when the link is used (O_EXCL, so two clicks at once cannot both use it)."""
        return (
            self.folder(root) / f".member-export-{hashlib.sha256(self.token.encode()).hexdigest()[:16]}.used"
        )


def _folder_name(what: str, name: str) -> str:
    """A name used as one folder below the files dir: never a path, never hidden."""
    if not name or name != name.strip() or name.startswith(".") or len(name) > 200:
        raise ValueError(f"{what} {name!r} cannot be used as a folder name")
    if any(c in name for c in "/\\\0") or not name.isprintable():
        raise ValueError(f"{what} {name!r} cannot be used as a folder name")
    return name


def export_upload_link(
    base_url: str,
    secret: str,
    flow_run_id: UUID | str,
    customer_key: str,
    upload_id: str,
    days: int = 7,
    company_name: str | None = None,
    now: float | None = None,
) -> str:
    """A link to a page that takes one member export for this run's upload; valid `days`, once."""
    text = json.dumps(
        {
            "run": str(UUID(str(flow_run_id))),
            "customer": _folder_name("customer key", customer_key),
            "upload": _folder_name("upload id", upload_id),
            "company": company_name,
            "expires": int((now or time.time()) + days * 86400),
        },
        separators=(",", ":"),
    )
    return f"{base_url.rstrip('/')}/member-export/{seal(secret, text, PURPOSE)}"


def member_export_link(
    flow_run_id: UUID | str,
    customer_key: str,
    upload_id: str,
    company_name: str | None = None,
    days: int = 7,
    block_name: str = "default",
) -> str:
    """`export_upload_link` with the Web App block's URL and key (or the WorkOS block's setup-links ones)."""
    from blocks.web_app import load_web_app

    web = load_web_app(block_name)
    return export_upload_link(
        web.url,
        web.signing_secret.get_secret_value(),
        flow_run_id,
        customer_key,
        upload_id,
        days,
        company_name,
    )


def read_link(secret: str | Sequence[str], token: str, now: float | None = None) -> ExportLink:
    """The link a token stands for; LinkError 403 (not ours) or 410 (expired) otherwise. `secret`: the
    current key, or it and the previous keys still accepted (tasks/tokens.py `unseal`)."""
    try:
        fields = json.loads(unseal(secret, token, INVALID, PURPOSE, LEGACY_PURPOSE))
        link = ExportLink(
            flow_run_id=str(UUID(fields["run"])),
            customer_key=_folder_name("customer key", fields["customer"]),
            upload_id=_folder_name("upload id", fields["upload"]),
            company_name=fields.get("company"),
            expires_at=int(fields["expires"]),
            token=token,
        )
    except (ValueError, KeyError, TypeError):
        raise LinkError(403, INVALID) from None
    if (now or time.time()) > link.expires_at:
        raise LinkError(410, "This upload link has expired. Please ask your 10KC contact for a new one.")
    return link
