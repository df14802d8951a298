"""Slack's limits, as the stand-in enforces them like real Slack: what we post is cut to fit or goes as
plain text, never dropped; posts faster than Slack takes wait for Retry-After and all arrive."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from sandbox.http import Response
from tasks.slack import Slack
from tasks.uploads import summary_text

COUNTS = {
    "invites": 3,
    "updates": 2,
    "deactivations": 1,
    "reactivations": 0,
    "deletions": 4,
    "rejected_rows": 0,
}


def test_a_huge_upload_summary_is_cut_to_fit_in_slack_and_still_posted(slack, slack_workspace):
    # a mapping table of 600 fields, none of them in the upload: one line each, 60,000+ characters
    summary = {**COUNTS, "unmapped_values": [], "missing_columns": [f"Field {i}" for i in range(600)]}
    customer = SimpleNamespace(company_name="Acme Corp")
    text = summary_text(SimpleNamespace(customer=customer, mode="production"), "staff.csv", summary)
    assert len(text) > 40_000

    Slack(slack_workspace).post("#monitoring-hris-files", text)

    [message] = slack.messages("monitoring-hris-files")
    assert len(message["text"]) <= 40_000 and slack.refused == []
    assert message["text"].startswith(":page_facing_up: *Acme Corp*: files from `staff.csv` (production)")
    assert "• potential invites: 3\n" in message["text"]
    shown, note = message["text"].rsplit("\n", 1)
    assert text.startswith(shown)
    rest = text[len(shown) :]  # what the CSM does not see, said plainly
    lines = rest.strip("\n").count("\n") + 1
    assert note == f"… _{len(rest):,} more characters ({lines:,} lines) not shown, cut to fit in Slack_"
    assert "\n• :warning: the mapped column `Field 0`" in message["text"]  # whole lines, none cut in half
    assert message["text"].rsplit("\n", 2)[-2].endswith(": ask the customer or update the mapping table")


def test_blocks_over_slacks_limits_are_cut_and_the_buttons_kept(slack, slack_workspace):
    buttons = {
        "type": "actions",
        "block_id": "gate",
        "elements": [
            {
                "type": "button",
                "action_id": "gate-approve",
                "value": "{}",
                "text": {"type": "plain_text", "text": "Approve"},
            }
        ],
    }
    blocks = (
        [{"type": "header", "text": {"type": "plain_text", "text": "H" * 200}}]
        + [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3_500}}]
        + [{"type": "section", "text": {"type": "mrkdwn", "text": f"line {i}"}} for i in range(60)]
        + [buttons]
    )
    Slack(slack_workspace).post("#am-acme", "Waiting for you", blocks=blocks)

    [message] = slack.messages("am-acme")
    shown = message["blocks"]
    assert len(shown) == 50 and shown[-1] == buttons and slack.refused == []
    assert len(shown[0]["text"]["text"]) == 150 and shown[0]["text"]["text"].endswith("…")
    head, note = shown[1]["text"]["text"].split("\n")
    assert len(shown[1]["text"]["text"]) <= 3_000 and head == "x" * len(head)
    assert note == f"… _{3_500 - len(head)} more characters (1 line) not shown, cut to fit in Slack_"
    assert (
        shown[-2]["type"] == "context"
        and "14 more parts do not fit in Slack" in shown[-2]["elements"][0]["text"]
    )


# What a cut must not split, each repeated past a section's 3,000 characters (one unit per repeat)
UNITS = {
    "emoji with a joiner": "👩\u200d💻",
    "emoji with a skin tone": "👍🏽",
    "flag": "🇩🇪",
    "combining accent": "e\u0301",
    "emoji code": ":warning: ",
    "bold": "*bold words here* ",
    "link": "<https://x.example/a_b|the run> ",
    "entity": "x&amp;y ",
    "code": "`some code` ",
}


@pytest.mark.parametrize("unit", UNITS.values(), ids=UNITS.keys())
def test_a_cut_never_splits_a_mrkdwn_entity_or_a_character(slack, slack_workspace, unit):
    # 45 sections, each shifted by one more character: the cut lands at every place in a unit
    texts = [f"{'p' * i} {unit * (3_200 // len(unit))}" for i in range(45)]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}} for text in texts]
    Slack(slack_workspace).post("#am-acme", "Long list", blocks=blocks)

    [message] = slack.messages("am-acme")
    assert slack.refused == [] and len(message["blocks"]) == 45
    for i, (text, block) in enumerate(zip(texts, message["blocks"], strict=True)):
        shown, note = block["text"]["text"].rsplit("\n… _", 1)
        assert text.startswith(shown) and "not shown, cut to fit in Slack" in note
        whole = (len(shown) - i - 1) % len(unit)  # characters of a unit begun and not ended
        assert whole in (0, len(unit.rstrip())), f"shift {i}: the cut splits {shown[-8:]!r}"


def test_a_cut_inside_a_code_block_closes_it_before_saying_what_is_missing(slack, slack_workspace):
    text = "Columns:\n```\n" + "".join(f"column {i}\n" for i in range(5_000)) + "```"
    Slack(slack_workspace).post("#am-acme", text)

    [message] = slack.messages("am-acme")
    shown, note = message["text"].rsplit("\n", 1)
    assert shown.endswith("\n```") and shown.count("```") == 2 and text.startswith(shown[:-4])
    assert note.startswith("… _") and note.endswith(" not shown, cut to fit in Slack_")


def test_a_notice_whose_blocks_cannot_go_is_posted_as_its_plain_text(slack, slack_workspace):
    poster = Slack(slack_workspace)
    value = json.dumps({"run": "r", "gate": "g" * 2_100, "form": "approval"})
    buttons = [{"type": "actions", "elements": [{"type": "button", "action_id": "a", "value": value}]}]
    poster.post(
        "#am-acme", "Waiting for you: *Apply* <https://prefect.example/runs/1|Open the run>", blocks=buttons
    )
    # blocks Slack refuses for a reason we do not check: the plain text still gets there
    slack.fail_next("chat.postMessage", Response(200, {"ok": False, "error": "invalid_blocks"}))
    section = [{"type": "section", "text": {"type": "mrkdwn", "text": "fine"}}]
    poster.post("#am-acme", "Waiting for you: *Send*", blocks=section)

    first, second = slack.messages("am-acme")
    assert (first["text"], first["blocks"]) == (
        "Waiting for you: *Apply* <https://prefect.example/runs/1|Open the run>",
        None,
    )
    assert (second["text"], second["blocks"]) == ("Waiting for you: *Send*", None)


def test_posts_faster_than_slack_takes_wait_for_retry_after_and_all_arrive_once(slack, slack_workspace):
    slack.post_burst = 1  # real Slack: about one a second per channel
    poster = Slack(slack_workspace)
    for i in range(3):
        poster.post("#product-support", f"alert {i}")

    assert [m["text"] for m in slack.messages("product-support")] == ["alert 0", "alert 1", "alert 2"]
    assert ("chat.postMessage", "ratelimited") in slack.refused  # Slack said 429, the poster waited
    assert len(slack.calls("chat.postMessage")) == 3 + slack.refused.count(
        ("chat.postMessage", "ratelimited")
    )
