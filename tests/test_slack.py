"""Support requests, file sharing and errors, through slack-sdk against the Slack stand-in."""

from __future__ import annotations

import pytest
from prefect import flow

from blocks import SlackWorkspace
from sandbox.slack_replies import rate_limited
from tasks.once import once_key
from tasks.slack import Slack, SlackError
from tasks.support import (
    API_FEATURES,
    api_support_request,
    post_request,
    post_support_request,
    sftp_support_request,
)
from tests.conftest import make_customer

RUN = "http://127.0.0.1:4200/runs/flow-run/abc"


def test_api_support_request_lists_everything_the_runbook_asks_for(slack, slack_workspace):
    customer = make_customer()
    text = api_support_request(
        customer,
        "https://dashboard.workos.com/organizations/org_123",
        "https://docs.google.com/spreadsheets/d/KEY",
        RUN,
    )
    post_request(slack_workspace, text)

    [message] = slack.messages("product-support")
    body = message["text"]
    assert "Acme Corp" in body
    assert f"*10KC tenant URL:* <{customer.tenant_url}>" in body
    assert "*WorkOS organization page:* <https://dashboard.workos.com/organizations/org_123>" in body
    assert "*Completed data mapping table:* <https://docs.google.com/spreadsheets/d/KEY>" in body
    assert (
        "Bulk invite CSV template generation, profile updates, profile deletions, and profile deactivations"
        in body
    )
    assert all(feature in body for feature in API_FEATURES)


def test_sftp_support_request_attaches_the_sample_csv_in_its_thread(slack, slack_workspace, tmp_path):
    customer = make_customer()
    sample = tmp_path / "acme-sample.csv"
    sample.write_bytes(b"Email,First Name\r\nann@acme.example,Ann\r\n")
    text = sftp_support_request(customer, "please create the 3 files from the sample", sample.name, RUN)
    request = post_request(slack_workspace, text, sample)

    request_message, file_message = slack.messages("product-support")
    body = request_message["text"]
    for expected in (
        "please create the 3 files from the sample",
        "`acme-sample.csv` (attached in the thread)",
        f"*Tenant URL:* <{customer.tenant_url}>",
        f"*Hub URL:* <{customer.hub_url}>",
        "*CSM:* Casey Success (casey@10kc.example)",
        "*Implementation Manager:* Imani Manager (imani@10kc.example)",
    ):
        assert expected in body
    [shared] = file_message["files"]
    assert slack.files[shared["id"]]["content"] == sample.read_bytes()
    assert request.attachment_file_id == shared["id"]
    assert request.permalink.startswith("https://sandbox.slack.example/archives/")


def test_a_support_request_is_posted_once_across_reruns(prefect_api, slack, slack_workspace):
    @flow
    def request_support(text: str, key: str):
        return post_support_request(slack_workspace, text, key)

    key = once_key(make_customer().key, "api-support-request")
    first = request_support("please turn it on", key)
    again = request_support("please turn it on", key)
    assert len(slack.messages("product-support")) == 1
    assert again.ts == first.ts


def test_a_file_shared_in_a_channel_arrives_with_its_bytes(slack, slack_workspace, tmp_path):
    data = "Email,Naïve\n" + "x@acme.example,é\n" * 5000
    path = tmp_path / "profile updates.csv"
    path.write_text(data, encoding="utf-8")
    file_id = Slack(slack_workspace).share_file("#am-acme", path, comment="3 updates")
    assert slack.files[file_id]["content"] == data.encode()
    assert slack.messages("am-acme")[-1]["text"] == "3 updates"


@pytest.mark.slow
def test_a_429_is_retried_after_retry_after_and_posts_once(slack, slack_workspace):
    slack.fail_next("chat.postMessage", rate_limited(retry_after=1))
    Slack(slack_workspace).post("#am-acme", "hello")
    assert len(slack.calls("chat.postMessage")) == 2
    assert [m["text"] for m in slack.messages("am-acme")] == ["hello"]


def test_channels_on_later_pages_are_found_with_one_listing(slack, slack_workspace):
    poster = Slack(slack_workspace)
    poster.post("#monitoring-hris-files", "a")
    poster.post("#product-support", "b")
    assert len(slack.calls("conversations.list")) == 3  # six channels, two per page, listed once


def test_a_missing_channel_is_a_clear_error(slack, slack_workspace):
    with pytest.raises(SlackError, match="Slack channel #am-nobody does not exist"):
        Slack(slack_workspace).post("#am-nobody", "hello")


def test_a_channel_without_the_bot_says_to_invite_it(slack, slack_workspace):
    with pytest.raises(SlackError, match="not in #secret-room: invite it"):
        Slack(slack_workspace).post("#secret-room", "hello")
    assert slack.messages("secret-room") == []


def test_a_wrong_token_is_a_clear_error(slack):
    wrong = SlackWorkspace(bot_token="xoxb-wrong", base_url=f"{slack.url}/api/")
    with pytest.raises(SlackError, match="invalid_auth"):
        Slack(wrong).post("#am-acme", "hello")


def test_channel_names_are_validated():
    with pytest.raises(ValueError, match="not a channel name"):
        SlackWorkspace(bot_token="x", product_support_channel="product support")
