"""The flows' real once-steps in a process of their own, for killing: `python -m tests.once_effects
EFFECT ONCE_KEY STAND_IN_URL WORK_DIR`.

EFFECT is `support-request` (tasks/support.py, with the sample in its thread), `share-files`
(tasks/uploads.py: a summary and three files in its thread), `apply-files` (the hub's three
bulk uploads), `workos-organization` (API step 1's find-or-create) or `email` (a reviewed email:
STAND_IN_URL is `smtp://127.0.0.1:PORT`, an optional fifth argument the CSM's answer after an
unclear send). The files are made in WORK_DIR; the step talks to the stand-in at STAND_IN_URL.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from prefect import flow

from blocks import SlackWorkspace, SmtpServer, TenKCHub, WorkOSCredentials
from tasks.customer import Customer
from tasks.emails import EmailDraft, send_email
from tasks.files import DELETIONS, INVITES, UPDATES
from tasks.hub_apply import apply_through_hub
from tasks.support import post_support_request
from tasks.uploads import share_files
from tasks.workos import ensure_organization_task
from tests.conftest import make_customer

HUB_URL = "https://acme.10kc.example/hub/main"
FILES = {
    INVITES: "Email,First Name,Last Name\nann@acme.example,Ann,Lee\n",
    UPDATES: "Email,Department\nbo@acme.example,Sales\n",
    DELETIONS: "Email\ncy@acme.example\n",
}


def customer_for(once_key: str) -> Customer:
    """The same customer in every process that runs the step under this key."""
    domain = f"acme-{hashlib.sha256(once_key.encode()).hexdigest()[:8]}.com"
    return make_customer(email_domains=[domain], contact_email=f"dana.admin@{domain}")


def make_files(work: Path) -> list[Path]:
    work.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (work / name).write_text(text)
    return [work / name for name in FILES]


@flow(name="once-effect")
def once_effect(effect: str, once_key: str, url: str, work: str, answer: str = "") -> str:
    paths = make_files(Path(work))
    slack = SlackWorkspace(bot_token="xoxb-test", base_url=f"{url}/api/", max_retries=0)
    if effect == "support-request":
        return post_support_request(slack, "Support request for Acme", once_key, paths[0]).ts
    if effect == "share-files":
        return share_files(slack, "#am-acme", "3 files for Acme", paths, once_key).message_ts
    if effect == "apply-files":
        hub = TenKCHub(api_token="hub-test", base_url_override=url)
        return str(apply_through_hub(hub, HUB_URL, work, once_key))
    if effect == "workos-organization":
        workos = WorkOSCredentials(api_key="sk_test_123", base_url=url)
        return ensure_organization_task(workos, customer_for(once_key)).id
    if effect == "email":
        smtp = SmtpServer(
            host="127.0.0.1",
            port=int(url.rsplit(":", 1)[1]),
            security="none",
            timeout_seconds=600,
            from_address="cs@10kc.example",
        )
        draft = EmailDraft(
            template="t", to=["dana.admin@acme.example"], subject="Your HRIS integration", body="Hi\n"
        )
        return send_email(smtp, draft, once_key, unclear_answer=answer).message_id
    raise ValueError(f"unknown effect {effect!r}")


if __name__ == "__main__":
    effect, key, url, work, *answer = sys.argv[1:]
    state = once_effect(effect, key, url, work, *answer, return_state=True)
    print(state.message or state.type.value, flush=True)
    sys.exit(0 if state.is_completed() else 1)
