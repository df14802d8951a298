"""The runbook's customer emails as drafts a CSM reviews: each template filled for one customer.

Templates are written in Markdown (CommonMark: paragraphs, `**bold**`, `*italics*`, `[label](url)`,
`## heading`, `- item`, `1. item`) so a CSM can read and edit one text in the approval form; it
becomes both the plain-text and the HTML part of the message. markdown-it-py renders the HTML, with
raw HTML shown as text, and a line break in the text is a line break in the email. Sending is
tasks/emails.py.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from markdown_it import MarkdownIt
from pydantic import BaseModel, Field

from tasks.customer import Customer
from tasks.platforms import Catalogue, placeholder_links
from tasks.templating import TemplateError, render


class EmailTemplateError(TemplateError):
    """An email template could not be rendered, or lacks its Subject line."""


class EmailDraft(BaseModel):
    """A rendered email waiting for review: the body is markup the CSM can edit."""

    template: str
    to: list[str]
    cc: list[str] = Field(default_factory=list)
    reply_to: str | None = None
    subject: str
    body: str
    attachments: list[str] = Field(default_factory=list, description="Files sent with the email (paths)")
    notes: list[str] = Field(
        default_factory=list, description="What the reviewer should know (e.g. why Template 2)"
    )

    def text(self) -> str:
        return markup_to_text(self.body)

    def html(self) -> str:
        return markup_to_html(self.body)

    def warnings(self) -> list[str]:
        """Plain sentences for the reviewer: the draft's notes, then every placeholder link in the body."""
        links = placeholder_links(self.body)
        placeholder = (
            [
                f"{len(links)} link(s) in this email point at a placeholder host or page, "
                "not the real Help Center: "
                + ", ".join(links)
                + ". Correct them in the body, or set the Help Center Variable (README) and run again."
            ]
            if links
            else []
        )
        return [*self.notes, *placeholder]

    def for_review(self) -> str:
        """The draft as markdown for the approval form and artifact, warnings first; its line breaks
        are explicit, so any Markdown renderer shows what the email's HTML part will."""
        cc = ", ".join(self.cc) or "—"
        warnings = "".join(f"> ⚠️ **Check:** {w}\n>\n" for w in self.warnings())
        return (
            (warnings.removesuffix(">\n") + "\n" if warnings else "")
            + f"**To:** {', '.join(self.to)}  \n**Cc:** {cc}  \n**Subject:** {self.subject}\n\n"
            f"---\n\n{hard_line_breaks(self.body)}\n"
            + "".join(f"\n📎 {Path(a).name}" for a in self.attachments)
        )


def render_email(
    template: str, *, to: list[str], cc: list[str], reply_to: str | None = None, **context
) -> EmailDraft:
    """Render `templates/emails/<template>.md.j2`; its first line is `Subject: …`."""
    name = f"emails/{template}.md.j2"
    try:
        rendered = render(name, **context)
    except TemplateError as exc:
        raise EmailTemplateError(str(exc)) from None
    first_line, _, body = rendered.partition("\n")
    if not first_line.startswith("Subject:"):
        raise EmailTemplateError(f"email template {name} must start with a 'Subject:' line")
    return EmailDraft(
        template=template,
        to=to,
        cc=[c for c in dict.fromkeys(cc) if c not in to],
        reply_to=reply_to,
        subject=first_line.removeprefix("Subject:").strip(),
        body=body.strip() + "\n",
    )


_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "breaks": True})


def hard_line_breaks(markup: str) -> str:
    """Every line followed by another in the same block ends in a Markdown hard break ('  ')."""
    lines = markup.split("\n")
    return "\n".join(
        line + "  "
        if line.strip() and i + 1 < len(lines) and lines[i + 1].strip() and not line.endswith("  ")
        else line
        for i, line in enumerate(lines)
    )


def markup_to_text(markup: str) -> str:
    """Plain-text part: links as 'label (url)', bold markers dropped."""
    text = _LINK.sub(lambda m: f"{m[1]} ({m[2]})", markup.strip())
    text = _BOLD.sub(r"\1", text)
    text = re.sub(r"^## ", "", text, flags=re.MULTILINE)
    return text + "\n"


def markup_to_html(markup: str) -> str:
    """HTML part: CommonMark with raw HTML shown as text and each line break kept."""
    style = "font-family: Arial, Helvetica, sans-serif; font-size: 14px; line-height: 1.5; color: #1f2328"
    return f'<html><body style="{style}">\n' + _MARKDOWN.render(markup.strip() + "\n") + "</body></html>\n"


def _platform_and_guide(customer: Customer, catalogue: Catalogue, base: str) -> tuple[str, str, bool]:
    """The platform's name as the runbook writes it, its setup guide, and whether it is listed."""
    platform = catalogue.find(customer.platform)
    if platform is None:
        return customer.platform, base + catalogue.api_guide_path, False
    return platform.name, platform.guide_url(base), True


def to_customer(customer: Customer, default_cc: list[str]) -> dict:
    """To the customer's contact, the CSM in Cc (and the block's default Cc), replies to the CSM."""
    return {
        "to": [customer.contact_email],
        "cc": [*default_cc, customer.csm.email],
        "reply_to": customer.csm.email,
    }


def draft_setup_guides_email(
    customer: Customer, catalogue: Catalogue, help_center_url: str, default_cc: list[str]
) -> EmailDraft:
    """Runbook 'Share the right setup guides': Template 1 for a listed platform, else Template 2."""
    base = help_center_url.rstrip("/")
    name, guide, listed = _platform_and_guide(customer, catalogue, base)
    context = {
        "first_name": customer.contact_first_name,
        "csm_name": customer.csm.name,
        "platform": name,
        "sftp_guide_title": catalogue.sftp_guide_title,
        "sftp_guide_url": base + catalogue.sftp_guide_path,
    }
    if listed:
        return render_email(
            "setup_guides_platform", guide_url=guide, **context, **to_customer(customer, default_cc)
        )
    draft = render_email(
        "setup_guides_other", api_guide_url=guide, **context, **to_customer(customer, default_cc)
    )
    note = (
        f"Template 2 (other platforms) was chosen because “{customer.platform}” is not one of the "
        f"{len(catalogue.platforms)} platforms in the catalogue. If it is one of them under another name, "
        "reject and start again with the catalogue's name."
    )
    return draft.model_copy(update={"notes": [note]})


def draft_api_implementation_email(
    customer: Customer,
    catalogue: Catalogue,
    help_center_url: str,
    default_cc: list[str],
    setup_link: str,
    fields: list[str],
) -> EmailDraft:
    """API step 2: how the integration works, the questions, the mapping table and the WorkOS link."""
    base = help_center_url.rstrip("/")
    name, guide, _ = _platform_and_guide(customer, catalogue, base)
    return render_email(
        "api_implementation",
        first_name=customer.contact_first_name,
        csm_name=customer.csm.name,
        platform=name,
        guide_url=guide,
        fields=fields,
        mapping_article_url=base + catalogue.mapping_article_path,
        mapping_template_url=base + catalogue.mapping_template_path,
        setup_link=setup_link,
        **to_customer(customer, default_cc),
    )


def draft_api_final_summary(
    customer: Customer,
    catalogue: Catalogue,
    help_center_url: str,
    default_cc: list[str],
    mapping_url: str,
    cadence: str,
) -> EmailDraft:
    """API step 6: the summary of how each capability works once it is on."""
    base = help_center_url.rstrip("/")
    name, _, _ = _platform_and_guide(customer, catalogue, base)
    return render_email(
        "api_final_summary",
        platform=name,
        csm_name=customer.csm.name,
        mapping_url=mapping_url,
        mapping_article_url=base + catalogue.mapping_article_path,
        cadence=cadence,
        **to_customer(customer, default_cc),
    )


def draft_sftp_implementation_email(
    customer: Customer, catalogue: Catalogue, help_center_url: str, default_cc: list[str]
) -> EmailDraft:
    """SFTP step 1: how the file-based integration works and the next steps."""
    base = help_center_url.rstrip("/")
    name, _, _ = _platform_and_guide(customer, catalogue, base)
    return render_email(
        "sftp_implementation",
        first_name=customer.contact_first_name,
        csm_name=customer.csm.name,
        platform=name,
        sftp_guide_url=base + catalogue.sftp_guide_path,
        **to_customer(customer, default_cc),
    )


def draft_sftp_review_email(
    customer: Customer,
    default_cc: list[str],
    files: list[Path],
    counts: dict,
    download_link: str | None = None,
    link_expires: datetime | None = None,
) -> EmailDraft:
    """SFTP step 4: the three files from the sample for the customer to verify: attached, or, with
    `download_link` (files too large to attach), behind that link, which works until `link_expires`."""
    draft = render_email(
        "sftp_review",
        first_name=customer.contact_first_name,
        csm_name=customer.csm.name,
        invites=counts["invites"],
        updates=counts["updates"],
        deletions=counts["deletions"],
        download_link=download_link,
        link_expires=f"{link_expires:%d %B %Y}" if link_expires else "",
        **to_customer(customer, default_cc),
    )
    if download_link is not None:
        return draft
    return draft.model_copy(update={"attachments": [str(f) for f in files]})


REVIEW_VALUES_SHOWN = 30  # the email lists this many unmapped values, then says how many more


def draft_mapping_review_email(
    customer: Customer,
    catalogue: Catalogue,
    help_center_url: str,
    default_cc: list[str],
    mapping_url: str,
    cadence: str,
    period: str,
    unmapped: list[dict],
) -> EmailDraft:
    """mapping-review: the runbook's request for updated values, once per period; `unmapped` (field,
    value, people, first_seen) lists what the customer's recent uploads carried that the table lacks."""
    return render_email(
        "mapping_review",
        first_name=customer.contact_first_name,
        csm_name=customer.csm.name,
        mapping_url=mapping_url,
        mapping_article_url=help_center_url.rstrip("/") + catalogue.mapping_article_path,
        cadence=cadence,
        period=period,
        unmapped=unmapped[:REVIEW_VALUES_SHOWN],
        more=max(0, len(unmapped) - REVIEW_VALUES_SHOWN),
        **to_customer(customer, default_cc),
    )
