"""Every customer email, as received at the SMTP stand-in, reads without doubled words or open quotes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from blocks import SmtpServer
from tasks.email_drafts import draft_mapping_review_email
from tasks.emails import (
    deliver,
    draft_api_final_summary,
    draft_api_implementation_email,
    draft_setup_guides_email,
    draft_sftp_implementation_email,
    draft_sftp_review_email,
)
from tasks.platforms import load_catalogue
from tests.conftest import make_customer

HELP = "https://help.example.test"
CATALOGUE = load_catalogue()
TEMPLATES = Path(__file__).parent.parent / "templates" / "emails"
CC = ["team@10kc.example"]
MAPPING = "https://docs.google.com/spreadsheets/d/SANDBOXdemoMappingTable0001/edit"

# Words of one kind that never stand side by side in a sentence ("they you", "the your").
_PRONOUNS = {"i", "you", "we", "they", "he", "she"}
_DETERMINERS = {"a", "an", "the", "your", "our", "their", "its", "my", "this", "these"}


def _drafts(tmp_path: Path):
    """One draft per template, with the values a real run passes."""
    customer = make_customer(platform="Workday", contact_first_name="Priya", company_name="Acme Corp")
    other = make_customer(platform="Oracle HCM", contact_first_name="Priya")
    files = []
    for name in ["potential invites.csv", "profile updates.csv", "profile deletions.csv"]:
        (tmp_path / name).write_text("email\n")
        files.append(tmp_path / name)
    return [
        draft_setup_guides_email(customer, CATALOGUE, HELP, CC),
        draft_setup_guides_email(other, CATALOGUE, HELP, CC),
        draft_api_implementation_email(
            customer,
            CATALOGUE,
            HELP,
            CC,
            "https://setup.10kc.example/l/abc",
            ["Department", "Location", "Level"],
        ),
        draft_api_final_summary(customer, CATALOGUE, HELP, CC, MAPPING, "quarterly"),
        draft_sftp_implementation_email(customer, CATALOGUE, HELP, CC),
        draft_sftp_review_email(customer, CC, files, {"invites": 6, "updates": 3, "deletions": 1}),
        _receipt(customer, tmp_path),
        draft_mapping_review_email(
            customer,
            CATALOGUE,
            HELP,
            CC,
            MAPPING,
            "monthly",
            "2026-11",
            [{"field": "Department", "value": "Sales Ops", "people": 4, "first_seen": "2026-11-02"}] * 31,
        ),
    ]


def _receipt(customer, tmp_path: Path):
    """The upload receipt with every part it can have: rejected rows, a missing column, unmapped values."""
    from datetime import UTC, datetime

    from tasks.files import REJECTED
    from tasks.receipts import draft_receipt
    from tasks.registry import Registration

    reg = Registration(
        customer=customer,
        mode="production",
        mapping_link="map.csv",
        upload_frequency="weekly",
        registered_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    (tmp_path / REJECTED).write_text("Line,Email,Reason\n7,x,invalid email\n")
    summary = {
        "rows": 1,
        "invites": 1,
        "updates": 1,
        "deactivations": 1,
        "reactivations": 0,
        "deletions": 1,
        "rejected_rows": 1,
        "unmapped_values": [{"field": "Department", "value": "Sales Ops", "rows": 4}],
        "missing_columns": ["Location", "Department"],
        "renamed_columns": [{"field": "Department", "column": "Dept", "matching": 3, "values": 4}],
    }
    return draft_receipt(reg, "staff.csv", summary, tmp_path, CC)


def copy_problems(text: str) -> list[str]:
    """Doubled or clashing neighbouring words, and quotes opened and never closed, paragraph by paragraph."""
    problems = []
    for paragraph in re.split(r"\n\s*\n", text):
        words = list(re.finditer(r"[A-Za-z]+(?:['’][A-Za-z]+)?", paragraph))
        for a, b in zip(words, words[1:], strict=False):
            if paragraph[a.end() : b.start()].strip():
                continue  # punctuation between them: a new clause or sentence
            pair = {a[0].lower(), b[0].lower()}
            if len(pair) == 1 or pair <= _PRONOUNS or pair <= _DETERMINERS:
                problems.append(f"“{a[0]} {b[0]}” in {paragraph[:60]!r}")
        curly = "".join(c for c in paragraph if c in "“”")
        if curly != "“”" * (len(curly) // 2):
            problems.append(f"unbalanced “ ” in {paragraph[:60]!r}")
        if paragraph.count('"') % 2:
            problems.append(f'unbalanced " in {paragraph[:60]!r}')
    return problems


def test_the_checker_finds_the_runbooks_old_typos():
    assert copy_problems("We'll invite people when they you add a row.")
    assert copy_problems("the list of employees in the your HRIS system")
    assert copy_problems("Review the the file.")
    assert copy_problems("the values “active” or “inactive. We will")
    assert copy_problems('a "status" field with "active')
    assert not copy_problems('the values “active” or “inactive.” Inactive ones: the "profile updates" file.')


def test_every_customer_email_reads_cleanly(smtp_server, tmp_path):
    smtp = SmtpServer(
        host="127.0.0.1", port=smtp_server.port, security="none", from_address="cs@10kc.example"
    )
    drafts = _drafts(tmp_path)
    assert {d.template for d in drafts} == {p.name.removesuffix(".md.j2") for p in TEMPLATES.glob("*.md.j2")}

    problems = {}
    for i, draft in enumerate(drafts):
        deliver(smtp, draft, f"once--copy--{i}")
        message = smtp_server.handler.messages()[-1]
        text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
        found = copy_problems(message["Subject"] + "\n\n" + text)
        if found:
            problems[draft.template] = found
    assert problems == {}


@pytest.mark.parametrize(
    "template, phrase",
    [
        ("sftp_implementation", "when you add a row"),
        ("sftp_implementation", "The 10KC team will review the sample file"),
        ("sftp_implementation", "10KC will share a list of profiles"),
        ("sftp_implementation", "We expect the values “active” or “inactive”."),
        ("api_final_summary", "As we get closer to a firmer release date we can share more details."),
    ],
)
def test_the_corrected_sentences_reach_the_customer(smtp_server, tmp_path, template, phrase):
    smtp = SmtpServer(
        host="127.0.0.1", port=smtp_server.port, security="none", from_address="cs@10kc.example"
    )
    draft = next(d for d in _drafts(tmp_path) if d.template == template)
    deliver(smtp, draft, "once--copy--phrase")
    text = smtp_server.handler.messages()[-1].get_body(preferencelist=("plain",)).get_content()
    assert phrase in " ".join(text.split())
