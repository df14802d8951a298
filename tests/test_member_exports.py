"""The signed member-export upload page, through real HTTP: a CSM's upload resumes the waiting run once."""

from __future__ import annotations

import codecs
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from prefect import flow

from blocks import WebApp, WorkOSCredentials
from tasks.approvals import WaitSettings, ask
from tasks.export_links import MemberExportReceived, export_upload_link, member_export_link, read_link
from tasks.setup_links import make_setup_link, sign
from tasks.tabular import read_csv
from tasks.tokens import LinkError
from tasks.workos import ensure_organization
from tests.conftest import ServerThread, delete_block, make_customer
from tests.gates import FlowInThread, read_run, waiting_gate
from webapp.app import app_from_blocks, create_app
from webapp.member_exports import routes

SECRET = "member-export-test-secret-0123456789abcdef"
MAX_BYTES = 256 * 1024
EXPORT = (
    "Email,First Name,Last Name,Status,Department\n"
    "ann@acme.com,Ann,Lee,active,Engineering\n"
    "bob@acme.com,Bob,Stone,active,Sales\n"
    "cy@acme.com,Cy,Young,deactivated,Sales\n"
)


@flow
def waits_for_member_export() -> dict:
    """What process-upload does without a hub API: wait at a gate for the member export."""
    answer = ask(
        MemberExportReceived,
        key="member-export",
        title="Member export",
        description="Upload the hub's member export",
        wait=WaitSettings(poll_seconds=0.2),
    )
    return answer.model_dump()


@pytest.fixture
def web(prefect_api, tmp_path):
    """The member-export pages on a free port, keeping files under tmp/files."""
    root = tmp_path / "files"
    server = ServerThread(create_app(routes(SECRET, files_dir=lambda: root, max_bytes=MAX_BYTES)))
    try:
        yield SimpleNamespace(url=server.url, root=root)
    finally:
        server.stop()


def waiting_run() -> FlowInThread:
    run = FlowInThread(waits_for_member_export, f"member-export-{uuid.uuid4().hex[:8]}")
    waiting_gate(run.flow_run_id)
    return run


def link_for(web, run_id, upload_id: str = "employees.csv-20261126T0400Z", **kwargs) -> str:
    return export_upload_link(
        web.url, SECRET, run_id, "acme.com", upload_id, company_name="Acme Corp", **kwargs
    )


def post(link: str, content: bytes, name: str = "members_export.csv", uploaded_by: str = "Casey Success"):
    return httpx.post(
        link,
        data={"uploaded_by": uploaded_by},
        files={"export": (name, content, "text/csv")},
        timeout=30,
        trust_env=False,
    )


def get(link: str) -> httpx.Response:
    return httpx.get(link, timeout=30, trust_env=False)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def error_line(response: httpx.Response) -> str:
    return re.search(r'<p class="error">(.*?)</p>', response.text).group(1)


@pytest.mark.parametrize(
    "content",
    [EXPORT.encode("utf-8-sig"), codecs.BOM_UTF16_LE + EXPORT.replace(",", "\t").encode("utf-16-le")],
    ids=["utf-8 with BOM", "Excel unicode text (utf-16, tabs)"],
)
def test_a_csm_uploads_the_export_and_the_waiting_run_continues_with_its_path(web, content):
    run = waiting_run()
    link = link_for(web, run.flow_run_id)

    form = get(link)
    assert form.status_code == 200
    assert "Member export for Acme Corp" in form.text and "Members &gt; Export" in form.text
    assert 'type="file"' in form.text and "Your name" in form.text

    done = post(link, content)
    assert done.status_code == 200, done.text
    assert "Thank you, Casey Success" in done.text and "3 members" in done.text
    state = run.result()
    stored = web.root / "acme.com" / "employees.csv-20261126T0400Z" / "members.csv"
    assert state.is_completed() and state.result() == {
        "export_path": str(stored),
        "uploaded_by": "Casey Success",
        "members": 3,
    }
    table = read_csv("member export", stored)  # kept as UTF-8, as the file engine reads it
    assert table.header[:2] == ["Email", "First Name"] and table.table.num_rows == 3
    assert [p for p in files_under(web.root) if not p.endswith(".used")] == [
        "acme.com/employees.csv-20261126T0400Z/members.csv"
    ]


def test_a_used_link_gets_a_410_and_a_run_that_no_longer_waits_takes_nothing(web):
    run = waiting_run()
    link = link_for(web, run.flow_run_id)
    first, second = EXPORT.encode(), (EXPORT + "dee@acme.com,Dee,Dunn,active,Sales\n").encode()
    with ThreadPoolExecutor(2) as pool:  # two clicks on Upload at once: one wins, the other is told
        answers = list(pool.map(lambda content: post(link, content), [first, second]))
    assert sorted(a.status_code for a in answers) == [200, 410]
    members = run.result().result()["members"]
    stored = web.root / "acme.com" / "employees.csv-20261126T0400Z" / "members.csv"
    assert stored.read_bytes() == (first if members == 3 else second)
    before = (stored.read_bytes(), stored.stat().st_mtime_ns)

    again = post(link, EXPORT.replace("ann@", "zed@").encode())
    assert again.status_code == 410 and "already used" in again.text
    assert get(link).status_code == 410
    assert (stored.read_bytes(), stored.stat().st_mtime_ns) == before

    other_upload = link_for(web, run.flow_run_id, upload_id="staff.csv-20261203T0400Z")
    page = get(other_upload)
    assert page.status_code == 409 and "no longer waits" in page.text and 'type="file"' not in page.text
    assert post(other_upload, EXPORT.encode()).status_code == 409
    assert not (web.root / "acme.com" / "staff.csv-20261203T0400Z").exists()


BAD_FILES = [
    ("no Email column", "export.csv", b"Name,Status\nAnn Lee,active\n", "no Email column"),
    ("empty", "export.csv", b"", "the file is empty"),
    ("an xlsx", "export.xlsx", b"PK\x03\x04" + bytes(200), "an .xlsx spreadsheet, not a text CSV file"),
    ("binary", "export.csv", b"Email\n\x00\x01\x02\xff" * 10, "binary file"),
    ("ragged", "export.csv", b"Email,Status\nann@acme.com,active,extra\n", "line 2 has 3 fields"),
    (
        "too large",
        "export.csv",
        b"Email\n" + b"someone@acme.com\n" * (MAX_BYTES // 16),
        "larger than 0.25 MB",
    ),
    ("far too large", "export.csv", b"Email\n" + b"someone@acme.com\n" * MAX_BYTES, "larger than 0.25 MB"),
]


def test_bad_files_get_a_one_line_error_nothing_is_stored_and_the_run_still_waits(web):
    run = waiting_run()
    link = link_for(web, run.flow_run_id)
    for case, name, content, problem in BAD_FILES:
        response = post(link, content, name=name)
        assert response.status_code in (400, 413), case
        line = error_line(response)
        assert problem in line and "\n" not in line, (case, line)
        assert 'type="file"' in response.text, case  # the form again, with the name typed (if it was read)
        assert ('value="Casey Success"' in response.text) == (case != "far too large"), case
        assert "ann@acme.com" not in response.text
        assert files_under(web.root) == [], case
    nameless = post(link, EXPORT.encode(), uploaded_by="  ")
    assert nameless.status_code == 400 and error_line(nameless) == "enter your name"
    assert files_under(web.root) == []
    assert read_run(run.flow_run_id).state.is_paused()

    assert post(link, EXPORT.encode()).status_code == 200  # the refused tries did not use the link up
    assert run.result().result()["members"] == 3


def test_tampered_foreign_and_expired_links_are_refused(web):
    run_id = uuid.uuid4()  # never checked: the token is refused first
    token = link_for(web, run_id).rsplit("/", 1)[1]
    version, payload, signature = token.split(".")
    other_secret = "another-secret-of-at-least-32-bytes-long"
    foreign = [
        f"{version}.{payload}.{signature[:-2]}xx",
        f"{version}.{payload[:-2]}xx.{signature}",
        f"{payload}.{signature}",
        export_upload_link(web.url, other_secret, run_id, "acme.com", "u1").rsplit("/", 1)[1],
        sign(SECRET, "org_123", int(time.time()) + 3600),  # a setup-link token with the same key
        "é.ü",
        "garbage",
    ]
    for bad in foreign:
        for response in (
            get(f"{web.url}/member-export/{bad}"),
            post(f"{web.url}/member-export/{bad}", b"Email\n"),
        ):
            assert response.status_code == 403 and "not valid" in response.text, bad
    expired = link_for(web, run_id, days=1, now=time.time() - 2 * 86400)
    assert get(expired).status_code == 410 and "expired" in get(expired).text
    assert post(expired, EXPORT.encode()).status_code == 410
    assert files_under(web.root) == []


@pytest.mark.parametrize("name", ["../other", "/etc", "a/b", "..", ".hidden", ""])
def test_a_link_is_never_made_for_a_name_that_is_a_path(name):
    with pytest.raises(ValueError, match="cannot be used as a folder name"):
        export_upload_link("http://app", SECRET, uuid.uuid4(), name, "upload-1")
    with pytest.raises(ValueError, match="cannot be used as a folder name"):
        export_upload_link("http://app", SECRET, uuid.uuid4(), "acme.com", name)


def test_the_web_app_command_refuses_a_missing_or_short_key_in_one_line(prefect_api, capsys):
    from pydantic import SecretStr

    from cli.main import main

    name = f"web-{uuid.uuid4().hex[:8]}"
    assert main(["setup-links", "--block", name]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    WebApp.model_construct(url="http://127.0.0.1:1", signing_secret=SecretStr("too-short")).save(name)
    try:
        assert main(["setup-links", "--block", name]) == 2
        error = capsys.readouterr().err.strip()
        assert "at least 32 bytes" in error and "\n" not in error and "too-short" not in error
    finally:
        delete_block(WebApp, name)


def test_the_served_app_signs_with_the_web_app_block_or_else_the_workos_setup_links_key(
    prefect_api, workos_credentials
):
    name = f"web-{uuid.uuid4().hex[:8]}"
    organization = ensure_organization(workos_credentials, make_customer()).id
    gone_run = uuid.uuid4()  # a run the server does not know: a valid link gets "no longer has this request"
    workos_credentials.save(name)
    try:
        server = ServerThread(app_from_blocks(name))  # no Web App block: the WorkOS block's URL and key
        try:
            setup_path = make_setup_link(
                "", workos_credentials.setup_links_secret.get_secret_value(), organization, 30
            )
            assert httpx.get(server.url + setup_path, trust_env=False, timeout=30).status_code == 302
            link = member_export_link(gone_run, "acme.com", "u1", block_name=name)
            assert link.startswith(workos_credentials.setup_links_url)
            response = get(link.replace(workos_credentials.setup_links_url, server.url))
            assert response.status_code == 410 and "no longer has this request" in response.text
        finally:
            server.stop()

        WebApp(url="https://hris.10kc.example", signing_secret=SECRET).save(name)
        server = ServerThread(app_from_blocks(name))
        try:
            link = member_export_link(gone_run, "acme.com", "u1", block_name=name)
            assert link.startswith("https://hris.10kc.example/member-export/")
            assert get(link.replace("https://hris.10kc.example", server.url)).status_code == 410
            old_key = export_upload_link(
                server.url,
                workos_credentials.setup_links_secret.get_secret_value(),
                gone_run,
                "acme.com",
                "u1",
            )
            assert get(old_key).status_code == 403
            assert httpx.get(server.url + setup_path, trust_env=False, timeout=30).status_code == 302
        finally:
            server.stop()
    finally:
        delete_block(WebApp, name)
        delete_block(WorkOSCredentials, name)


def test_after_a_rotation_links_signed_with_a_previous_secret_still_open_and_unknown_ones_do_not(
    prefect_api, workos_credentials
):
    """Rotating the signing secrets (the current one moved to the previous list, a new one set) keeps
    every link already emailed working until it expires; new links use the new key; a link signed
    with a key the blocks never had is refused."""
    from pydantic import SecretStr

    name = f"web-{uuid.uuid4().hex[:8]}"
    organization = ensure_organization(workos_credentials, make_customer()).id
    gone_run = uuid.uuid4()  # a run the server does not know: a valid link gets "no longer has this request"
    old_setup_secret = workos_credentials.setup_links_secret.get_secret_value()
    new_setup_secret, new_web_secret = (
        "rotated-setup-secret-0123456789abcdefgh",
        "rotated-web-secret-0123456789abcdefghij",
    )
    unknown = "a-key-these-blocks-never-had-0123456789ab"
    old_export = export_upload_link("", SECRET, gone_run, "acme.com", "u1")
    old_setup = make_setup_link("", old_setup_secret, organization, 30)
    workos_credentials.setup_links_secret = SecretStr(new_setup_secret)
    workos_credentials.setup_links_previous_secrets = [SecretStr(old_setup_secret)]
    workos_credentials.save(name)
    WebApp(url="https://hris.10kc.example", signing_secret=new_web_secret, previous_secrets=[SECRET]).save(
        name
    )
    try:
        server = ServerThread(app_from_blocks(name))
        try:
            response = get(server.url + old_export)
            assert response.status_code == 410 and "no longer has this request" in response.text
            assert httpx.get(server.url + old_setup, trust_env=False, timeout=30).status_code == 302
            new = member_export_link(gone_run, "acme.com", "u1", block_name=name)
            assert get(new.replace("https://hris.10kc.example", server.url)).status_code == 410
            assert read_link(new_web_secret, new.rsplit("/", 1)[1]).flow_run_id == str(gone_run)
            with pytest.raises(LinkError):
                read_link(SECRET, new.rsplit("/", 1)[1])  # new links are signed with the current key only
            response = get(server.url + export_upload_link("", unknown, gone_run, "acme.com", "u1"))
            assert response.status_code == 403
            unknown_setup = make_setup_link("", unknown, organization, 30)
            assert httpx.get(server.url + unknown_setup, trust_env=False, timeout=30).status_code == 403
        finally:
            server.stop()
    finally:
        delete_block(WebApp, name)
        delete_block(WorkOSCredentials, name)


def test_a_short_previous_secret_is_refused_without_repeating_it():
    with pytest.raises(ValueError, match="previous_secrets must be at least 32 bytes") as refused:
        WebApp(url="https://hris.10kc.example", signing_secret=SECRET, previous_secrets=["too-short-old"])
    assert "too-short-old" not in str(refused.value)
    with pytest.raises(ValueError, match="setup_links_previous_secrets must be at least 32 bytes"):
        WorkOSCredentials(api_key="sk_test_1", setup_links_previous_secrets=["too-short-old"])
