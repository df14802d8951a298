"""The setup-guides flow run in-process (the gate pauses), answered through the API like a CSM."""

from __future__ import annotations

import uuid

from prefect.client.orchestration import get_client

from flows.setup_guides import setup_guides
from tests.conftest import make_customer, wait_until
from tests.gates import FlowInThread, answer, form_description, waiting_gate

CSM = {"approver": "Casey Success"}


def start(customer) -> FlowInThread:
    return FlowInThread(setup_guides, f"setup-guides-{uuid.uuid4().hex[:8]}", customer=customer)


def artifacts_of(flow_run_id, prefix: str) -> list:
    with get_client(sync_client=True) as client:
        response = client.request(
            "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}}
        )
    return [a for a in response.json() if (a.get("key") or "").startswith(prefix)]


def test_approved_email_is_sent_once_even_when_the_flow_is_run_again(smtp_block, smtp_server):
    customer = make_customer(platform="Okta")
    run = start(customer)
    answer(run.flow_run_id, "setup-guides-email", decision="approve", **CSM)
    answer(
        run.flow_run_id, "customer-choice", option="api", answered_by="Casey Success", notes="wants SSO too"
    )
    state = run.result()
    assert state.is_completed(), state.message
    assert state.result()["choice"] == "api"
    assert len(smtp_server.handler.messages()) == 1

    rerun = start(customer)  # a CSM starts the same customer again: no second approval, no second email
    answer(rerun.flow_run_id, "customer-choice", option="sftp", answered_by="Casey Success")
    assert rerun.result().is_completed()
    messages = smtp_server.handler.messages()
    assert len(messages) == 1
    assert messages[0]["To"] == customer.contact_email


def test_the_form_shows_the_rendered_email_to_approve(smtp_block, smtp_server):
    customer = make_customer(platform="Azure AD", contact_first_name="Noor")
    run = start(customer)
    answer_key = "setup-guides-email"
    assert waiting_gate(run.flow_run_id) == answer_key
    description = form_description(run.flow_run_id)
    assert f"**To:** {customer.contact_email}" in description
    assert "Hello Noor," in description
    assert "There are two ways to connect with Entra ID" in description
    answer(run.flow_run_id, answer_key, decision="reject", reason="wrong contact", **CSM)
    run.result()


def test_rejection_sends_nothing_and_records_who_and_why(smtp_block, smtp_server):
    customer = make_customer()
    run = start(customer)
    answer(run.flow_run_id, "setup-guides-email", decision="reject", reason="customer asked to wait", **CSM)
    state = run.result()
    assert state.is_cancelled()
    assert "rejected by Casey Success: customer asked to wait" in state.message
    assert smtp_server.handler.messages() == []
    decisions = artifacts_of(run.flow_run_id, "decision-")
    assert len(decisions) == 1
    assert "| Casey Success |" in decisions[0]["data"] and "| reject |" in decisions[0]["data"]
    assert "customer asked to wait" in decisions[0]["data"]


def test_an_edited_body_is_what_the_customer_receives(smtp_block, smtp_server):
    customer = make_customer(platform="Workday", contact_first_name="Sam")
    run = start(customer)
    edited = "Hello Sam,\n\nHere is [the Workday guide](https://help.example.test/workday).\n\nCasey\n"
    answer(run.flow_run_id, "setup-guides-email", decision="approve", body=edited, **CSM)
    answer(run.flow_run_id, "customer-choice", option="not yet", answered_by="Casey Success")
    assert run.result().is_completed()
    [message] = smtp_server.handler.messages()
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Here is the Workday guide (https://help.example.test/workday)." in text
    assert "There are two ways" not in text
    assert '<a href="https://help.example.test/workday">the Workday guide</a>' in html


def test_a_long_wait_sends_reminders_and_keeps_waiting(smtp_block, smtp_server, reminders_every_second):
    customer = make_customer()
    run = start(customer)
    wait_until(lambda: len(artifacts_of(run.flow_run_id, "reminder-")) >= 1, timeout=120, what="a reminder")
    reminder = artifacts_of(run.flow_run_id, "reminder-")[0]
    assert (
        "Still waiting" in reminder["data"] and str(run.flow_run_id) not in reminder["data"]
    )  # its own page
    answer(run.flow_run_id, "setup-guides-email", decision="approve", **CSM)
    answer(run.flow_run_id, "customer-choice", option="api", answered_by="Casey")
    assert run.result().is_completed()
    assert len(smtp_server.handler.messages()) == 1


def test_the_csm_is_told_in_slack_when_a_run_waits_and_reminded(
    smtp_block, smtp_server, slack_block, slack, reminders_every_second
):
    customer = make_customer()
    run = start(customer)
    wait_until(
        lambda: len(slack.messages("dm-" + slack.users["casey@10kc.example"].lower())) >= 2,
        timeout=120,
        what="a DM and a reminder",
    )
    waiting, reminder = slack.messages("dm-" + slack.users["casey@10kc.example"].lower())[:2]
    assert "Waiting for you" in waiting["text"] and str(run.flow_run_id) in waiting["text"]
    assert "Still waiting" in reminder["text"] and str(run.flow_run_id) in reminder["text"]
    # the link is for Slack: the resume dialog and the run's own artifacts do not link to themselves
    [waiting_artifact] = artifacts_of(run.flow_run_id, "waiting-")
    for shown_in_the_ui in (form_description(run.flow_run_id), waiting_artifact["data"]):
        assert "Send “" in shown_in_the_ui
        assert (
            str(run.flow_run_id) not in shown_in_the_ui and "Answer in the Prefect UI" not in shown_in_the_ui
        )
    answer(run.flow_run_id, "setup-guides-email", decision="reject", reason="test over", approver="Casey")
    assert run.result().is_cancelled()


def test_a_missing_smtp_block_is_a_clear_error(prefect_api):
    from blocks import SmtpServer
    from tests.conftest import delete_block

    delete_block(SmtpServer, "default")
    state = setup_guides(customer=make_customer(), return_state=True)
    assert state.is_failed()
    assert "No SMTP Server block named 'default'" in state.message


def test_an_unusable_answer_is_asked_again_instead_of_failing_the_run(smtp_block, smtp_server):
    customer = make_customer()
    run = start(customer)
    answer(
        run.flow_run_id, "setup-guides-email", decision="reject", reason="", **CSM
    )  # the UI lets this through
    assert waiting_gate(run.flow_run_id) == "setup-guides-email-again-1"
    assert "The last answer could not be used** (reason: say why you reject" in form_description(
        run.flow_run_id
    )
    answer(
        run.flow_run_id, "setup-guides-email-again-1", decision="reject", reason="duplicate request", **CSM
    )
    state = run.result()
    assert state.is_cancelled() and "duplicate request" in state.message
    assert smtp_server.handler.messages() == []


def test_the_csm_corrects_subject_and_cc_and_the_sent_email_carries_them(smtp_block, smtp_server):
    customer = make_customer(platform="Okta")
    run = start(customer)
    answer(
        run.flow_run_id,
        "setup-guides-email",
        decision="approve",
        subject="Okta and 10KC: your two options",
        cc="hris-team@10kc.example; lee.it@partner.example",
        **CSM,
    )
    answer(run.flow_run_id, "customer-choice", option="not yet", answered_by="Casey Success")
    assert run.result().is_completed()
    [message] = smtp_server.handler.messages()
    assert message["Subject"] == "Okta and 10KC: your two options"
    assert message["Cc"] == "hris-team@10kc.example, lee.it@partner.example"
    assert message["To"] == customer.contact_email
    [decision] = [
        a for a in artifacts_of(run.flow_run_id, "decision-") if a["key"].endswith("setup-guides-email")
    ]
    assert "Corrected before sending: subject, Cc." in decision["data"]


def test_an_invalid_correction_is_named_and_asked_again(smtp_block, smtp_server):
    customer = make_customer()
    run = start(customer)
    answer(run.flow_run_id, "setup-guides-email", decision="approve", to="dana at acme", **CSM)
    assert waiting_gate(run.flow_run_id) == "setup-guides-email-again-1"
    assert "'dana at acme' in To is not an email address" in form_description(run.flow_run_id)
    answer(run.flow_run_id, "setup-guides-email-again-1", decision="approve", subject="Two\nlines", **CSM)
    assert waiting_gate(run.flow_run_id) == "setup-guides-email-again-2"
    assert "subject: the subject must be one line" in form_description(run.flow_run_id)
    answer(run.flow_run_id, "setup-guides-email-again-2", decision="reject", reason="test over", **CSM)
    assert run.result().is_cancelled() and smtp_server.handler.messages() == []


def test_the_form_says_why_template_2_and_that_links_are_placeholders(smtp_block, smtp_server):
    customer = make_customer(platform="Oracle HCM")
    run = start(customer)
    description = form_description(run.flow_run_id)
    assert (
        "Template 2 (other platforms) was chosen because “Oracle HCM” is not one of the 15 platforms"
        in description
    )
    assert (
        "point at a placeholder host or page, not the real Help Center: https://help.10kc.example/"
        in description
    )
    answer(run.flow_run_id, "setup-guides-email", decision="reject", reason="test over", **CSM)
    assert run.result().is_cancelled()


def test_the_help_center_variable_replaces_the_placeholders(smtp_block, smtp_server):
    from prefect.variables import Variable

    Variable.set(
        "help_center",
        {  # a real host alone is not enough: the shipped SFTP guide path is a placeholder too
            "base_url": "https://help.10kc.com",
            "guides": {"Breath HR": "/articles/4711-breathe"},
            "sftp_guide": "/articles/4712-sftp",
        },
        overwrite=True,
    )
    try:
        run = start(make_customer(platform="breathe hr"))
        description = form_description(run.flow_run_id)
        assert "[this guide](https://help.10kc.com/articles/4711-breathe)" in description
        assert "Connecting Breathe HR to 10KC" in description
        assert "https://help.10kc.com/articles/4712-sftp" in description
        assert "placeholder" not in description
        answer(run.flow_run_id, "setup-guides-email", decision="reject", reason="test over", **CSM)
        assert run.result().is_cancelled()
    finally:
        Variable.unset("help_center")


def test_an_email_cut_off_after_the_server_kept_it_asks_the_csm_instead_of_sending_it_again(
    smtp_block, smtp_server
):
    sink = smtp_server.handler
    sink.inject("lost_answer")  # the server keeps the email; its "250" never arrives
    customer = make_customer(platform="Okta")
    run = start(customer)
    answer(run.flow_run_id, "setup-guides-email", decision="approve", **CSM)

    gate = "email-unclear-setup-guides-email"
    assert waiting_gate(run.flow_run_id) == gate
    description = form_description(run.flow_run_id)
    assert "may already have gone out" in description and "You are in Cc" in description
    assert len(sink.messages()) == 1 and sink.data_commands == 1  # not sent again unasked

    answer(run.flow_run_id, gate, outcome="It arrived", answered_by="Casey Success")
    answer(run.flow_run_id, "customer-choice", option="not yet", answered_by="Casey Success")
    assert run.result().is_completed()
    assert len(sink.messages()) == 1 and sink.data_commands == 1
    decisions = artifacts_of(run.flow_run_id, "decision-")
    assert any("| Casey Success |" in d["data"] and "| It arrived |" in d["data"] for d in decisions)
