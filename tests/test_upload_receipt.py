"""Issue 23 §2: after each production upload the customer's contact gets one receipt, as received at
the SMTP stand-in: the counts as decided, each rejected row's line and reason (the rejected rows, and
only they, attached), the missing columns and the values the mapping table lacks."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.input.actions import read_flow_run_input

from tasks.registry import Registration
from tests.conftest import make_customer
from tests.gates import FlowInThread, answer, artifacts_and_logs, form_description, read_run, wait_for_gate

MAPPING = (
    "Category,HRIS Field,HRIS Values,Notes,10KC Segment,10KC Value,Visibility\n"
    "Org,Department,Sales,,,,Public\nOrg,Location,London,,,,Public\n"
)
UPLOAD = (
    "Email,First Name,Last Name,Employee Status,Department\n"
    "ann@acme.example,Ann,Lee,active,Sales\n"
    "new@acme.example,New,Hire,active,Sales Ops\n"
    "not-an-email,Bexley,Rowntree,active,Sales\n"
    "odd@acme.example,Oddny,Quirke,on leave,Sales\n"
)
MEMBER_DATA = (
    "not-an-email",
    "odd@acme.example",
    "Oddny",
    "Quirke",
    "Bexley",
    "Rowntree",
)  # only ever in the attachment

RECEIPT = """\
Hello Dana,

We read 4 rows of your HRIS file staff.csv, and your CSM applied these changes to your 10KC hub:

- potential invites: 1 (your hub admins can invite these people with Bulk Invites)
- profile updates: 1 (deactivations: 0, reactivations: 0)
- profile deletions: 0

2 rows could not be used, so nobody on them was changed. Please correct them in your HRIS before your \
next upload; the attached "rejected rows.csv" lists them with their email:

- line 4: invalid email
- line 5: status 'on leave' is not active or inactive

Columns: please keep the column names your data mapping table uses, or send us an updated table.

- The column "Location" is not in the file, so Location was not updated on 10KC.

Values not in your data mapping table: profiles with these values did not get them on 10KC.

- Department: "Sales Ops" (1 row)

To add them, put each value in column C of your data mapping table, next to its field in column B, \
and send us the updated table.

If anything here looks wrong, just reply to this email.

Best regards,
Casey Success
"""


def receipt_customer(tmp_path) -> Registration:
    from tests.test_sftp_production import production_customer

    return production_customer(tmp_path, MAPPING, contact_first_name="Dana", company_name="Acme Corp")


def claim(sftp_server, reg: Registration, name: str = "staff.csv", text: str = UPLOAD) -> str:
    from tasks.sftp import claim_name

    processing = sftp_server.root / reg.customer.key / "processing"
    processing.mkdir(parents=True, exist_ok=True)
    claimed = claim_name(name)
    (processing / claimed).write_text(text)
    return claimed


def start(reg: Registration, claimed: str) -> FlowInThread:
    from flows.process_upload import process_upload

    name = f"upload-{uuid.uuid4().hex[:8]}"
    return FlowInThread(process_upload, name, customer_key=reg.customer.key, upload=claimed)


def plain_text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")


def attachments(message) -> dict[str, str]:
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


@pytest.mark.timeout(600)
def test_the_receipt_arrives_word_for_word_with_only_the_rejected_rows_attached(
    prefect_api, sftp_block, sftp_server, slack_block, slack, hub_block, hub, smtp_block, smtp_server,
    clean_registrations, tmp_path,
):  # fmt: skip
    reg = receipt_customer(tmp_path)
    hub.hub(reg.customer.hub_url).members["ann@acme.example"] = {
        "Email": "ann@acme.example",
        "Status": "active",
    }
    run = start(reg, claim(sftp_server, reg))
    wait_for_gate(run.flow_run_id, "apply-files")
    shown = form_description(run.flow_run_id)
    form = json.dumps(
        read_flow_run_input(
            read_run(run.flow_run_id).state.state_details.run_input_keyset["schema"],
            flow_run_id=run.flow_run_id,
        )
    )
    assert "line 5: status 'on leave' is not active or inactive" in form  # the editable text's default
    assert "**Receipt to the customer**" in shown and "Attached: rejected rows.csv (2 rows)." in shown
    assert "- line 4: invalid email" in shown
    assert smtp_server.handler.messages() == []  # nothing before the CSM approves
    answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey")  # as a Slack click
    assert run.result().is_completed()

    [message] = smtp_server.handler.messages()
    assert (message["To"], message["Cc"]) == (
        reg.customer.contact_email,
        "hris-team@10kc.example, casey@10kc.example",
    )
    assert message["Subject"] == "Your file staff.csv: what we changed on 10KC"
    assert plain_text(message) == RECEIPT
    [(name, rejected)] = attachments(message).items()
    assert name == "rejected rows.csv"
    assert list(csv.DictReader(io.StringIO(rejected))) == [  # never a row that was fine
        {"Line": "4", "Email": "not-an-email", "Reason": "invalid email"},
        {"Line": "5", "Email": "odd@acme.example", "Reason": "status 'on leave' is not active or inactive"},
    ]
    # The form's text (a run input Prefect keeps in plain text), artifacts and logs: no member data.
    artifacts, logs = artifacts_and_logs(run.flow_run_id)
    seen = [shown, form, *(a["data"] or "" for a in artifacts), *logs]
    assert not [text for text in seen for value in MEMBER_DATA if value in text]


@pytest.mark.timeout(900)
def test_one_receipt_per_upload_across_a_cut_off_send_a_re_run_and_a_duplicate(
    prefect_api, sftp_block, sftp_server, slack_block, slack, hub_block, hub, smtp_block, smtp_server,
    clean_registrations, tmp_path,
):  # fmt: skip
    sink = smtp_server.handler
    sink.inject("lost_answer")  # the server keeps the receipt; its "250" never arrives
    reg = receipt_customer(tmp_path)
    claimed = claim(sftp_server, reg)
    run = start(reg, claimed)
    answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey")
    wait_for_gate(run.flow_run_id, "email-unclear-upload-receipt", timeout=300)
    assert "may already have gone out" in form_description(run.flow_run_id)
    assert len(sink.messages()) == 1 and sink.data_commands == 1  # not sent again unasked
    answer(run.flow_run_id, "email-unclear-upload-receipt", outcome="It arrived", answered_by="Casey")
    assert run.result().is_completed()

    again = start(reg, claimed)  # the same claim dispatched again (a run taken for dead)
    assert again.result().is_completed()
    duplicate = start(reg, claim(sftp_server, reg, "staff-again.csv"))  # the same bytes, a new name
    assert duplicate.result().result()["duplicate_of"] == claimed
    assert len(sink.messages()) == 1 and sink.data_commands == 1


@pytest.mark.timeout(900)
def test_an_edited_receipt_goes_as_edited_and_none_goes_when_switched_off_or_rejected(
    prefect_api, sftp_block, sftp_server, slack_block, slack, hub_block, hub, smtp_block, smtp_server,
    clean_registrations, tmp_path,
):  # fmt: skip
    reg = receipt_customer(tmp_path)
    weeks = [claim(sftp_server, reg, f"week-{n}.csv", UPLOAD + f"w{n}@acme.example,W,{n},active,Sales\n") for n in (1, 2, 3)]  # fmt: skip

    first = start(reg, weeks[0])
    answer(
        first.flow_run_id,
        "apply-files",
        decision="approve",
        approver="Casey",
        receipt="Hello Dana,\n\nAll **done**.\n",
    )
    assert first.result().is_completed()
    [edited] = smtp_server.handler.messages()
    assert plain_text(edited) == "Hello Dana,\n\nAll done.\n"
    assert list(attachments(edited)) == ["rejected rows.csv"]

    second = start(reg, weeks[1])
    answer(second.flow_run_id, "apply-files", decision="approve", approver="Casey", send_receipt=False)
    assert second.result().is_completed()
    third = start(reg, weeks[2])
    answer(third.flow_run_id, "apply-files", decision="reject", approver="Casey", reason="wrong file")
    assert third.result().is_cancelled()
    assert len(smtp_server.handler.messages()) == 1
    _, logs = artifacts_and_logs(second.flow_run_id)
    assert "Receipt switched off by Casey: not sent" in logs


def test_the_receipt_names_at_most_fifty_rejected_rows_and_attaches_them_all(tmp_path):
    from tasks.files import REJECTED
    from tasks.receipts import draft_receipt

    reg = Registration(
        customer=make_customer(), mode="production", mapping_link="x", upload_frequency="weekly",
        registered_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
    )  # fmt: skip
    lines = "".join(f"{n},,missing email\n" for n in range(2, 62))
    (tmp_path / REJECTED).write_text("Line,Email,Reason\n" + lines)
    summary = {"rows": 60, "invites": 0, "updates": 0, "deactivations": 0, "reactivations": 0,
               "deletions": 0, "rejected_rows": 60,
               "unmapped_values": [{"field": "Team", "value": f"T{n}", "rows": 1} for n in range(45)]}  # fmt: skip
    draft = draft_receipt(reg, "big.csv", summary, tmp_path, [])
    assert "- line 51: missing email\n- and 10 more, all in the attached file\n" in draft.body
    assert '- Team: "T29" (1 row)\n- and 15 more values\n' in draft.body and "T30" not in draft.body
    assert "held in deletion grace" not in draft.body  # grace off: the runbook's wording only
    held = {"days": 14, "held": 3, "held_until": [{"until": "2026-12-22", "members": 3}], "back": 0}
    draft = draft_receipt(reg, "big.csv", summary | {"deletion_grace": held}, tmp_path, [])
    assert (
        "- profile deletions: 0\n- held in deletion grace: 3 until 2026-12-22 (people missing" in draft.body
    )
    assert "line 52:" not in draft.body and draft.attachments == [str(tmp_path / REJECTED)]
    assert Path(draft.attachments[0]).read_text().count("missing email") == 60
