"""Mail as it really is: the SMTP stand-in has a message size limit like a real relay (SIZE, 552), a
552 is one line naming the email and the limit and is not retried, and the SFTP review email's files,
when over the SMTP block's attachments limit, go as a signed, expiring download link served by the
public web app instead of attachments (issue 21)."""

from __future__ import annotations

import json
import re
import smtplib
import time
import uuid

import httpx
import pytest
from prefect import flow

from blocks import SmtpServer
from sandbox.smtp import start_smtp
from tasks.approvals import WaitSettings
from tasks.emails import EmailRefused, render_email
from tasks.files import DELETIONS, INVITES, UPDATES
from tasks.review_links import DOWNLOAD_LINK_SHOWN
from tasks.tokens import unb64
from tests.conftest import SETUP_LINKS_SECRET, ServerThread, free_port, make_customer
from tests.gates import FlowInThread, answer, form_description, waiting_gate
from tests.test_masked_links import email_text, stored_texts

CSM = {"approver": "Casey Success"}
FAST = WaitSettings(poll_seconds=0.2, remind_after_hours=1)


@pytest.fixture
def small_smtp(tmp_path):
    """The SMTP stand-in with a 200 kB message limit."""
    controller = start_smtp(tmp_path / "mail", free_port(), max_message_bytes=200_000)
    try:
        yield controller
    finally:
        controller.stop()


def test_the_stand_in_advertises_size_and_refuses_a_larger_message_with_552(small_smtp, tmp_path):
    with smtplib.SMTP("127.0.0.1", small_smtp.port, timeout=30) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "200000"
        # a client that does not declare the size is refused at the end of DATA
        assert client.mail("cs@10kc.example")[0] == 250
        assert client.rcpt("admin@acme.example")[0] == 250
        code, reply = client.data(b"Subject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * 3000)
        assert code == 552, reply
    assert small_smtp.handler.messages() == []
    default = start_smtp(tmp_path / "default-mail", free_port())  # 25 MB unless configured
    try:
        with smtplib.SMTP("127.0.0.1", default.port, timeout=30) as client:
            client.ehlo()
            assert client.esmtp_features["size"] == str(25 * 1024 * 1024)
    finally:
        default.stop()


DRAFT = render_email(
    "setup_guides_other",
    to=["admin@acme.example"],
    cc=[],
    first_name="Dana",
    csm_name="Casey",
    platform="Oracle",
    api_guide_url="https://help.example.test/api",
    sftp_guide_title="SFTP guide",
    sftp_guide_url="https://help.example.test/sftp",
)


@flow
def send_big_email(port: int, attachment: str) -> None:
    from tasks.emails import send_email

    smtp = SmtpServer(host="127.0.0.1", port=port, security="none", from_address="cs@10kc.example")
    draft = DRAFT.model_copy(update={"attachments": [attachment]})
    send_email(smtp, draft, f"big-{uuid.uuid4().hex[:8]}")


def test_a_552_is_one_line_naming_the_email_and_the_limit_and_is_not_retried(
    prefect_api, small_smtp, tmp_path
):
    big = tmp_path / "profile updates.csv"
    big.write_bytes(b"email,name\r\n" * 30_000)  # 360 kB
    state = send_big_email(small_smtp.port, str(big), return_state=True)
    assert state.is_failed()
    with pytest.raises(EmailRefused) as refused:
        state.result()
    message = str(refused.value)
    assert "\n" not in message
    assert f"the mail server refused the email {DRAFT.subject!r}: it is 0.5 MB," in message, message
    assert "over the mail server's limit of 0.2 MB (552)" in message, message
    assert small_smtp.handler.sessions == 1  # one try: a permanent refusal is not retried
    assert small_smtp.handler.messages() == []


@flow
def review_step(customer: dict, out: str, summary: dict) -> str:
    """sftp-integration's step 4 email on its own: the three files from the sample, reviewed, sent."""
    from pathlib import Path

    from blocks import SmtpServer, load_block
    from flows.sftp_integration import send_review_email
    from tasks.customer import Customer

    sent = send_review_email(Customer(**customer), load_block(SmtpServer), Path(out), summary, FAST)
    return sent.message_id


def write_files(folder, rows: int) -> dict[str, bytes]:
    """The three review files, `rows` made-up members each (about 60 bytes a row)."""
    folder.mkdir(parents=True)
    made = {}
    for name in (INVITES, UPDATES, DELETIONS):
        data = "Email,First Name,Last Name,Department\r\n" + "".join(
            f"person{i}@acme.example,First{i},Last{i},{name[:7]}\r\n" for i in range(rows)
        )
        made[name] = data.encode()
        (folder / name).write_bytes(made[name])
    return made


@pytest.fixture
def review_files_app():
    from webapp import review_files
    from webapp.app import create_public_app

    server = ServerThread(create_public_app(review_files.routes(SETUP_LINKS_SECRET)))
    try:
        yield server
    finally:
        server.stop()


def get(url: str) -> httpx.Response:
    return httpx.get(url, trust_env=False, timeout=60, follow_redirects=False)


def test_review_files_over_the_limit_go_as_a_download_link_served_by_the_public_app(
    prefect_api, smtp_server, slack_block, slack, workos_block, review_files_app
):
    from blocks import SmtpServer
    from tasks.files_dir import files_dir
    from tasks.review_links import download_link

    customer = make_customer(email_domains=[f"big-{uuid.uuid4().hex[:6]}.example"])
    out = files_dir() / customer.key / "sample-staff"
    made = write_files(out, rows=3_000)  # 3 x ~150 kB: over a 0.3 MB limit
    block = SmtpServer(
        host="127.0.0.1",
        port=smtp_server.port,
        security="none",
        from_address="cs@10kc.example",
        attachments_limit_mb=0.3,
        download_link_days=3,
    )
    block.save("default", overwrite=True)
    summary = {"invites": 3000, "updates": 3000, "deletions": 3000}
    run = FlowInThread(
        review_step,
        f"review-{uuid.uuid4().hex[:8]}",
        customer=customer.model_dump(mode="json"),
        out=str(out),
        summary=summary,
    )
    assert waiting_gate(run.flow_run_id) == "sftp-review-email"
    form = form_description(run.flow_run_id)
    assert "No files are attached" in form and "over the 0.3 MB limit for attachments" in form
    assert "valid 3 days" in form and DOWNLOAD_LINK_SHOWN in form and "📎" not in form
    answer(run.flow_run_id, "sftp-review-email", decision="approve", **CSM)
    assert run.result().is_completed()

    [email] = smtp_server.handler.messages()
    assert list(email.iter_attachments()) == []
    text = email_text(email)
    link = re.search(rf"{re.escape(workos_block.setup_links_url)}/review-files/([\w.-]+)", text)
    assert link is not None and DOWNLOAD_LINK_SHOWN not in text
    token = link.group(1)
    # nowhere in what Prefect keeps or Slack shows
    assert [where for where, stored in stored_texts(run.flow_run_id).items() if token in str(stored)] == []
    assert not [m for c in list(slack.channels.values()) for m in c.messages if token in m["text"]]

    # the link, through the public app: the page lists the three files, each downloads as made
    page = get(f"{review_files_app.url}/review-files/{token}")
    assert page.status_code == 200 and all(name in page.text for name in made)
    names = json.loads(unb64(token.split(".")[1]))["files"]
    for index, name in enumerate(names):
        response = get(f"{review_files_app.url}/review-files/{token}/{index}")
        assert response.status_code == 200 and response.content == made[name]
        assert name.replace(" ", "%20") in response.headers["content-disposition"]
    assert get(f"{review_files_app.url}/review-files/{token}/3").status_code == 404

    # an expired link, and a token of another purpose, are refused
    two_days_ago = time.time() - 2 * 86400
    expired = download_link("", SETUP_LINKS_SECRET, customer.key, out.name, names, days=1, now=two_days_ago)
    response = get(f"{review_files_app.url}{expired}")
    assert response.status_code == 410 and "expired" in response.text
    from tasks.export_links import export_upload_link

    other = export_upload_link("", SETUP_LINKS_SECRET, uuid.uuid4(), customer.key, out.name)
    response = get(f"{review_files_app.url}/review-files/{other.rsplit('/', 1)[1]}/0")
    assert response.status_code == 403 and "not valid" in response.text


def test_the_attachments_limit_is_15_mb_by_default_counted_once_encoded(tmp_path):
    from tasks.emails import too_large_to_attach

    block = SmtpServer(host="smtp.example", from_address="cs@10kc.example")
    assert block.attachments_limit_mb == 15 and block.download_link_days == 14
    files = [tmp_path / name for name in (INVITES, UPDATES, DELETIONS)]
    for path in files:  # sparse files: the size counts, not the bytes
        with open(path, "wb") as f:
            f.truncate(5 * 1024 * 1024)
    assert too_large_to_attach(files, block.attachments_limit_mb) is None  # exactly 15 MB: attached
    with open(files[0], "ab") as f:
        f.truncate(5 * 1024 * 1024 + 200 * 1024)
    why = too_large_to_attach(files, block.attachments_limit_mb)
    assert why == (
        "the 3 files are 15.2 MB (20.8 MB once encoded for email), over the 15 MB limit for attachments "
        "(SMTP Server block, “Attachments limit (MB)”)"
    )


def test_a_busy_link_says_when_to_come_back_and_an_expired_one_how_to_get_a_new_one(tmp_path):
    from tasks.review_links import download_link
    from webapp import review_files
    from webapp.app import create_public_app

    made = write_files(tmp_path / "acme.example" / "sample-staff", rows=3)
    now = [1_000.0]
    routes = review_files.routes(SETUP_LINKS_SECRET, lambda: tmp_path, per_minute=2, clock=lambda: now[0])
    server = ServerThread(create_public_app(routes))
    try:
        link = download_link(server.url, SETUP_LINKS_SECRET, "acme.example", "sample-staff", sorted(made))
        assert [get(f"{link}/0").status_code for _ in range(2)] == [200, 200]
        busy = get(f"{link}/0")
        assert busy.status_code == 429 and busy.headers["retry-after"] == "61"
        assert "Try again in 61 s." in busy.text
        now[0] += 61  # as long as Retry-After said: the link opens again
        assert get(f"{link}/0").status_code == 200

        old = download_link(
            server.url, SETUP_LINKS_SECRET, "acme.example", "sample-staff", sorted(made), days=1, now=1
        )
        expired = get(old)
        [line] = re.findall(r'<p class="error">(.*)</p>', expired.text)
        assert expired.status_code == 410 and "Traceback" not in expired.text
        assert line == (
            "This download link expired on 02 January 1970. Please reply to the email it came in, or "
            "write to your 10KC contact, and they will send you a new one."
        )
    finally:
        server.stop()
