"""The Approve / Reject buttons on a gate's Slack notice (tasks/approvals.py posts them; the web app's
`/slack/actions` in webapp/slack_actions.py answers their clicks).
"""

from __future__ import annotations

import json

from tasks.contracts import BUTTON_LABELS, slack_form_of

APPROVE, REJECT = "gate-approve", "gate-reject"


def gate_blocks(text: str, flow_run_id: str, gate_key: str, form: str) -> list[dict] | None:
    """The notice with buttons that answer this gate of this run; None for forms a button cannot fill."""
    if slack_form_of(form) is None:
        return None
    approve, reject = BUTTON_LABELS[slack_form_of(form)]
    value = json.dumps({"run": flow_run_id, "gate": gate_key, "form": form})
    buttons = [
        {"type": "button", "action_id": APPROVE, "style": "primary", "value": value, "text": _plain(approve)}
    ]
    if reject:
        buttons.append(
            {"type": "button", "action_id": REJECT, "style": "danger", "value": value, "text": _plain(reject)}
        )
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": "gate", "elements": buttons},
    ]


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}
