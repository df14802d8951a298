"""Names several parts must agree on live in tasks/contracts.py only, and keep their stored values.

A gate key, signal, deployment name, Slack form name or SFTP folder written as a string anywhere
else is a copy that can drift (it has, three times); a changed value strands runs already waiting.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tasks import contracts

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    path
    for folder in ("cli", "flows", "tasks", "blocks", "webapp", "sandbox", "benchmarks")
    for path in sorted((ROOT / folder).rglob("*.py"))
    if path.name != "contracts.py"
]

# Values runs already waiting, notices already posted and files already on SFTP servers carry.
STORED = {
    "SETUP_GUIDES": "setup-guides",
    "API_INTEGRATION": "api-integration",
    "SFTP_INTEGRATION": "sftp-integration",
    "PROCESS_UPLOAD": "process-upload",
    "SETUP_GUIDES_EMAIL": "setup-guides-email",
    "API_IMPLEMENTATION_EMAIL": "api-implementation-email",
    "API_FINAL_SUMMARY": "api-final-summary",
    "SFTP_IMPLEMENTATION_EMAIL": "sftp-implementation-email",
    "SFTP_REVIEW_EMAIL": "sftp-review-email",
    "UPLOAD_RECEIPT": "upload-receipt",
    "CUSTOMER_CHOICE": "customer-choice",
    "WORKOS_ORGANIZATION": "workos-organization",
    "WORKOS_SETUP_LINK": "workos-setup-link",
    "MAPPING_TABLE": "mapping-table",
    "SEGMENTS_PLAN": "segments-plan",
    "SEGMENTS_CHECKLIST": "segments-checklist",
    "INTEGRATION_ON": "integration-on",
    "SUMMARY_CADENCE": "summary-cadence",
    "CUSTOMER_READY": "customer-ready",
    "CUSTOMER_CONFIRMED": "customer-confirmed",
    "MEMBER_EXPORT": "member-export",
    "QUEUED": "queued",
    "MASS_DELETION": "mass-deletion",
    "APPLY_FILES": "apply-files",
    "MAPPING_REVIEW": "mapping-review",
    "MAPPING_REVIEW_EMAIL": "mapping-review-email",
    "EMAIL_UNCLEAR": "email-unclear",
    "PRODUCTION_UPLOAD": "production-upload",
    "PROCESSING": "processing",
    "ARCHIVE": "archive",
    "REFUSED": "refused",
    "APPROVAL_FORM": "approval",
    "INTEGRATION_ON_FORM": "integration-on",
    "PROGRESS_ARTIFACT": "progress",
    "UPLOAD_ARTIFACT": "upload",
    "KEPT_INPUTS": "inputs",
    "KEPT_UPLOAD": "upload.csv",
    "KEPT_MEMBERS": "members.csv",
    "MAPPING_WHATIF_ARTIFACT": "mapping-whatif",
}
# Written nowhere else: as a whole string; numbered gates also as a key's start, folders in a path.
TOO_COMMON = {"approval", "progress", "upload", "inputs", "members.csv"}  # as words, or a scratch file
OWNED = sorted(set(STORED.values()) - TOO_COMMON)
NUMBERED = ("mapping-table", "queued")
FOLDERS = ("processing", "archive", "refused")


def test_stored_names_keep_their_values():
    assert {name: getattr(contracts, name) for name in STORED} == STORED
    assert contracts.deployment_name("process-upload") == "process-upload/process-upload"
    assert contracts.numbered("mapping-table", 2) == "mapping-table-2"
    assert contracts.review_email_step("2026-Q4") == "mapping-review-email-2026-Q4"
    assert (contracts.API_CUSTOMER_PREFIX, contracts.MAPPING_REVIEW_PREFIX) == (
        "api_customer_",
        "mapping_review_",
    )
    assert contracts.asked_again("apply-files", 1) == "apply-files-again-1"
    assert contracts.progress_artifact("sftp-integration", "acme.com") == "progress-sftp-integration-acme-com"
    assert contracts.inbox_folder("/in/acme.com", "processing", "x.csv") == "/in/acme.com/processing/x.csv"


@pytest.mark.parametrize(
    ("pause_key", "gate"),
    [
        ("mapping-table-3", "mapping-table"),
        ("apply-files-again-2", "apply-files"),
        ("queued-12", "queued"),
        ("member-export", "member-export"),
        ("setup-guides-email", "setup-guides-email"),
    ],
)
def test_a_pause_key_names_its_gate(pause_key, gate):
    assert contracts.gate_of(pause_key) == gate


def test_notices_posted_with_old_form_names_still_answer_their_gates():
    assert contracts.slack_form_of("EmailReview") == contracts.slack_form_of("Approval") == "approval"
    assert contracts.slack_form_of("IntegrationOn") == "integration-on"
    assert contracts.slack_form_of("CustomerChoice") is None


def test_a_click_fills_in_the_forms_a_button_answers():
    """What a click sends must be a valid answer of the form class that names that button form."""
    from flows.api_integration import IntegrationOn
    from tasks.approvals import Approval
    from tasks.steps import EmailReview

    for form in (Approval, IntegrationOn):
        answer = contracts.click_answer(form.slack_form, "ana@10kc.example (verified in Slack)", "approve")
        form(**answer)
    Approval(**contracts.click_answer("approval", "ana", "reject", "wrong customer"))
    assert EmailReview.slack_form == "approval"  # its subject/To/body come from the form's initial data


def _string_constants(tree: ast.AST):
    """(line, text) of every string in the code, except docstrings, and field names (dict keys,
    subscripts, `"x" in row`) without a dash: a column called "refused" is not the refused/ folder,
    but `WAITING_ON["integration-on"]` is a copy of a gate key."""
    docstrings, skipped = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
        elif isinstance(node, ast.Dict):
            skipped.update(id(key) for key in node.keys if key is not None)
        elif isinstance(node, ast.Subscript):
            skipped.add(id(node.slice))
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            skipped.add(id(node.left))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if id(node) not in skipped or "-" in node.value:
                yield node.lineno, node.value


def _copies(text: str) -> list[str]:
    found = [value for value in OWNED if text == value]
    found += [gate for gate in NUMBERED if text.startswith(gate + "-")]
    found += [folder for folder in FOLDERS if f"/{folder}/" in text or text.startswith(folder + "/")]
    return found


def test_contract_names_are_written_only_in_tasks_contracts():
    copies = [
        f"{path.relative_to(ROOT)}:{line}: {text!r} copies {', '.join(_copies(text))}"
        for path in SOURCES
        for line, text in _string_constants(ast.parse(path.read_text()))
        if _copies(text)
    ]
    assert not copies, "import these from tasks/contracts.py instead:\n" + "\n".join(copies)


def test_the_csm_guide_says_what_every_gate_asks():
    guide = (ROOT / "docs" / "csm-guide.md").read_text()
    rows = {
        line.split("|")[1].strip().split(" ")[0].strip("`")
        for line in guide.splitlines()
        if line.startswith("| `")
    }
    assert set(contracts.GATES) <= rows, f"not in docs/csm-guide.md: {sorted(set(contracts.GATES) - rows)}"
    gate_constants = {
        value
        for name, value in STORED.items()
        if not name.endswith(("_FORM", "_ARTIFACT")) and not name.startswith("KEPT_")
    }
    folders_and_flows = {
        "processing",
        "archive",
        "refused",
        contracts.MAPPING_REVIEW,
        *contracts.RUNBOOK_FLOWS,
    }
    email_steps = {"upload-receipt"}  # reviewed inside another gate: a gate only as email-unclear-…
    assert gate_constants - folders_and_flows - email_steps == set(contracts.GATES), (
        "a gate is missing from contracts.GATES"
    )
