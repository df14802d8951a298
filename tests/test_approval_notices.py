"""A gate's Slack notice shows what an Approve click approves: an upload's counts and the deletion guard,
or the email as it will go out (escaped); what cannot fit in one Slack section only links to Prefect."""

from __future__ import annotations

import uuid

from flows.process_upload import process_upload
from flows.setup_guides import setup_guides
from tasks.approval_notices import SECTION_LIMIT, email_details
from tasks.emails import EmailDraft
from tasks.gate_notices import waiting_notice
from tasks.templating import SlackText
from tests.conftest import make_customer, wait_until
from tests.gates import FlowInThread, answer, waiting_gate
from tests.test_sftp import _claimed

CSM = "casey@10kc.example"
COUNTS = (
    "*From `staff.csv`:*\n"
    "• potential invites: 1\n"
    "• profile updates: 1 (0 deactivations, 0 reactivations)\n"
    "• profile deletions: 39\n"
    "• rejected rows: 0\n"
    "• deletion guard: 39 of 40 members (97.5%), limit 20% :warning: over the limit\n"
)


def notices(slack) -> list[str]:
    """The "waiting for you" notices in the CSM's DM, oldest first."""
    return [
        m["text"] for m in slack.messages(f"dm-{slack.users[CSM].lower()}") if "Waiting for you" in m["text"]
    ]


def test_an_email_review_notice_shows_the_email_escaped(
    prefect_api, smtp_block, smtp_server, slack_block, slack
):
    customer = make_customer(contact_first_name="Dana <!channel>", company_name="Acme & Co")
    run = FlowInThread(setup_guides, f"notice-{uuid.uuid4().hex[:8]}", customer=customer)
    assert waiting_gate(run.flow_run_id) == "setup-guides-email"
    [text] = wait_until(lambda: notices(slack), what="the email review notice")
    head, _, rest = text.partition("\n")
    assert head.startswith(":raised_hand: Waiting for you: *Send “")
    lines = rest.splitlines()
    assert lines[:3] == [
        f"*To:* {customer.contact_email}",
        "*Cc:* hris-team@10kc.example, casey@10kc.example",
        lines[2],
    ] and lines[2].startswith("*Subject:* ")
    assert lines[3] == ">Hello Dana &lt;!channel&gt;,"  # the body's first lines, escaped
    assert all(line.startswith(">") for line in lines[3:]) and len(lines[3:]) <= 9
    answer(run.flow_run_id, "setup-guides-email", decision="reject", reason="test over", approver="Casey")
    assert run.result().is_cancelled() and smtp_server.handler.messages() == []


def test_an_email_notice_names_the_attachments_with_their_sizes(tmp_path):
    attachment = tmp_path / "potential <!here> invites.csv"
    attachment.write_bytes(b"x" * 3_500)
    draft = EmailDraft(
        template="sftp_review",
        to=["it@acme.example"],
        subject="Files & more",
        body="Hi <@U1>,\n\n" + "".join(f"line {i}\n" for i in range(12)),
        attachments=[str(attachment)],
    )
    assert email_details(draft) == (
        "*To:* it@acme.example\n*Cc:* —\n*Subject:* Files &amp; more\n"
        ":paperclip: potential &lt;!here&gt; invites.csv (3.4 KiB)\n"
        ">Hi &lt;@U1&gt;,\n>\n>line 0\n>line 1\n>line 2\n>line 3\n>line 4\n>line 5\n>…"
    )


def test_what_does_not_fit_in_a_slack_section_only_links_to_prefect():
    text = waiting_notice("Send “Hello” to Acme", SlackText("x" * SECTION_LIMIT))
    assert len(text) <= SECTION_LIMIT and "xxx" not in text
    assert text.startswith(":raised_hand: Waiting for you: *Send “Hello” to Acme* <http")
    assert text.endswith(
        "|Open the run in Prefect>\n"
        "_What is to be decided does not fit in Slack: read it in Prefect before you answer._\n"
    )


def test_mass_deletion_and_apply_notices_carry_the_counts_and_the_guard(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    members = "Email,First Name,Last Name,Status\n" + "".join(
        f"m{i}@acme.example,M,{i},active\n" for i in range(40)
    )
    upload = b"Email,First Name,Last Name\nm0@acme.example,Em,0\nnew@acme.example,New,Hire\n"
    customer, inbox = _claimed(tmp_path, sftp_server, upload, hub=hub, members=members)
    run = FlowInThread(
        process_upload, f"upload-{uuid.uuid4().hex[:8]}", customer_key=customer.key, upload="staff.csv"
    )
    assert waiting_gate(run.flow_run_id) == "mass-deletion"
    [deletion] = wait_until(lambda: notices(slack), what="the mass-deletion notice")
    assert deletion.partition("\n")[0].startswith(
        ":raised_hand: Waiting for you: *Acme Corp: 39 of 40 members would be deleted* <http"
    )
    assert deletion.partition("\n")[2] == COUNTS
    answer(run.flow_run_id, "mass-deletion", decision="approve", approver="Casey")
    assert waiting_gate(run.flow_run_id) == "apply-files"
    [_, apply] = wait_until(lambda: notices(slack)[1:] and notices(slack), what="the apply notice")
    assert apply.startswith(":raised_hand: Waiting for you: *Apply Acme Corp's files through the hub API?*")
    assert apply.partition("\n")[2] == COUNTS
    answer(run.flow_run_id, "apply-files", decision="reject", reason="test over", approver="Casey")
    assert run.result().is_cancelled() and hub.hub(customer.hub_url).uploads == []
