"""Inboxes on a real SFTP server: completeness, claiming once, archiving, refusals, broken servers."""

from __future__ import annotations

import threading
import time
import uuid

import paramiko
import pytest

from blocks import SftpServer
from flows.process_upload import process_upload
from flows.sftp_watch import sftp_watch
from tasks.registry import Registration, register
from tasks.sftp import look, original_name, refusal_reason, settled
from tasks.status_board import build_board
from tests.conftest import make_customer
from tests.gates import FlowInThread, answer

MAPPING = """Category,HRIS Field,HRIS Values,Notes,10KC Segment,10KC Value,Visibility
Org,Department,Engineering,,,,Public
,,Sales,,,,
"""
MEMBERS = "Email,First Name,Last Name,Status,Department\nann@acme.example,Ann,Lee,active,Sales\nold@acme.example,Old,Timer,active,Sales\n"
HUB_URL = "https://acme.10kc.example/hub/main"
# The tests that talk to a server run against both SFTP servers the project can use.
both_servers = pytest.mark.parametrize("sftp_server", ["openssh", "asyncssh"], indirect=True)

UPLOAD = "Email,First Name,Last Name,Employee Status,Department\nann@acme.example,Ann,Lee,active,Engineering\nnew@acme.example,New,Hire,active,Sales\n"


def registered(tmp_path, sftp_server, hub=None, members: str = MEMBERS, **overrides):
    """A customer registered for watching, with an inbox and (given the hub stand-in) hub members."""
    customer = make_customer(**overrides)
    (tmp_path / "map.csv").write_text(MAPPING)
    register(Registration(customer=customer, mode="onboarding", mapping_link=str(tmp_path / "map.csv")))
    if hub is not None:
        header, *rows = members.strip().splitlines()
        for row in rows:
            values = dict(zip(header.split(","), row.split(","), strict=True))
            hub.hub(customer.hub_url).members[values["Email"]] = values
    inbox = sftp_server.root / customer.key
    inbox.mkdir()
    return customer, inbox


def only_claim(inbox) -> str:
    """The one upload in processing/: its claimed name starts with the claim's UTC time."""
    [claimed] = (inbox / "processing").iterdir()
    return claimed.name


@both_servers
def test_partial_and_temporary_uploads_are_not_picked_up(sftp_block, sftp_server):
    inbox = sftp_server.root / "acme"
    inbox.mkdir()
    (inbox / "staff.csv.part").write_text("Email\n")
    (inbox / ".hidden.csv").write_text("Email\n")
    (inbox / "empty.csv").write_text("")
    growing = inbox / "staff.csv"
    growing.write_text("Email\na@acme.example\n")
    with sftp_block.get_client() as sftp:
        first = look(sftp, str(inbox))
        assert list(first) == ["staff.csv"]
        with open(growing, "a") as f:
            f.write("b@acme.example\n")  # still being written
        second = look(sftp, str(inbox))
        assert settled(first, second) == []
        assert [s.name for s in settled(second, look(sftp, str(inbox)))] == ["staff.csv"]


@both_servers
def test_overlapping_watchers_claim_each_upload_once(sftp_block, sftp_server, tmp_path, clean_registrations):
    customer, inbox = registered(tmp_path, sftp_server)
    (inbox / "staff.csv").write_text(UPLOAD)
    results, spans, together = [], [], threading.Barrier(2)

    def watch():
        together.wait(30)  # both ticks start at once; the 2 s settle lets both list the upload
        started = time.monotonic()
        results.append(sftp_watch(settle_seconds=2, start_processing=False))
        spans.append((started, time.monotonic()))

    threads = [threading.Thread(target=watch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads) and len(results) == 2, "both watchers must finish"
    (start_a, end_a), (start_b, end_b) = spans
    assert start_a < end_b and start_b < end_a, "the two watch ticks did not overlap"
    assert sorted(r["claimed"] for r in results) == [0, 1]
    assert original_name(only_claim(inbox)) == "staff.csv"
    assert not (inbox / "staff.csv").exists()


@both_servers
def test_a_processed_upload_is_shared_applied_then_archived_and_never_processed_twice(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    customer, inbox = registered(tmp_path, sftp_server, hub)
    (inbox / "staff.csv").write_text(UPLOAD)
    assert sftp_watch(settle_seconds=0.5, start_processing=False)["claimed"] == 1
    [alert] = slack.messages("monitoring-hris-files")
    assert "New HRIS upload from *Acme Corp*" in alert["text"] and "staff.csv" in alert["text"]
    assert f"`staff.csv` ({len(UPLOAD.encode())} B)." in alert["text"]  # not "(0.0 MiB)"
    claimed = only_claim(inbox)

    run = FlowInThread(
        process_upload, f"upload-{uuid.uuid4().hex[:8]}", customer_key=customer.key, upload=claimed
    )
    answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey")
    result = run.result().result()
    assert (result["invites"], result["updates"], result["deletions"]) == (1, 1, 1)
    assert result["outcome"] == "applied through the hub API: 1 invited, 1 updated, 1 removed"
    [row] = [row for row in build_board() if row.customer_key == customer.key]  # charted from its table
    assert [(u.name, u.rows, u.invites, u.deletions) for u in row.uploads] == [("staff.csv", 2, 1, 1)]
    summary, *files = [m for m in slack.messages("am-acme") if "Waiting for you" not in m["text"]]
    assert "potential invites: 1" in summary["text"] and "profile deletions: 1" in summary["text"]
    shared = {f["files"][0]["name"]: slack.files[f["files"][0]["id"]]["content"] for f in files}
    assert set(shared) == {"potential invites.csv", "profile updates.csv", "profile deletions.csv"}
    assert (
        b"new@acme.example" in shared["potential invites.csv"]
        and b"old@acme.example" in shared["profile deletions.csv"]
    )
    assert set(hub.hub(customer.hub_url).members) == {"ann@acme.example", "new@acme.example"}
    assert list((inbox / "processing").iterdir()) == []
    [archived] = (inbox / "archive").iterdir()
    assert archived.name == claimed and archived.read_text() == UPLOAD

    again = process_upload(customer.key, claimed, return_state=True)  # a manual re-run: decided already
    assert again.is_completed() and again.result()["outcome"] == result["outcome"]
    assert sftp_watch(settle_seconds=0.5, start_processing=False)["claimed"] == 0
    assert len([m for m in slack.messages("am-acme") if "Waiting for you" not in m["text"]]) == 1 + 3
    assert [action for action, _ in hub.hub(customer.hub_url).uploads] == ["invite", "update", "remove"]


@both_servers
def test_the_hub_gets_values_as_they_are_and_people_get_formulas_escaped(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    """Issue 20: a segment value `- None -` arrived in the hub as `'- None -` (the spreadsheet escape)."""
    customer, inbox = registered(tmp_path, sftp_server, hub)
    (tmp_path / "map.csv").write_text(MAPPING + ",,Unknown,,,- None -,\n")
    (inbox / "staff.csv").write_text(
        "Email,First Name,Last Name,Employee Status,Department\n"
        "ann@acme.example,Ann,Lee,active,Unknown\n"
        "old@acme.example,Old,Timer,active,Sales\n"
        "new@acme.example,=Bo,Hire,active,Unknown\n"
    )
    assert sftp_watch(settle_seconds=0.5, start_processing=False)["claimed"] == 1
    run = FlowInThread(
        process_upload, f"upload-{uuid.uuid4().hex[:8]}", customer_key=customer.key, upload=only_claim(inbox)
    )
    answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey")
    assert run.result().result()["outcome"] == "applied through the hub API: 1 invited, 2 updated, 0 removed"

    members = hub.hub(customer.hub_url).members
    assert members["ann@acme.example"]["Department"] == "- None -"
    assert (members["new@acme.example"]["First Name"], members["new@acme.example"]["Department"]) == (
        "=Bo",
        "- None -",
    )
    files = [m for m in slack.messages("am-acme") if m.get("files")]
    shared = {f["files"][0]["name"]: slack.files[f["files"][0]["id"]]["content"] for f in files}
    invites = shared["potential invites.csv"]
    assert b"'=Bo" in invites and b"'- None -" in invites  # escaped where people open them
    assert b"'- None -" in shared["profile updates.csv"]


def test_segment_options_reach_the_hub_as_they_are(hub):
    from blocks import TenKCHub
    from tasks.mapping import parse_rows
    from tasks.segments import apply_plan, plan_segments

    client = TenKCHub(api_token="hub-test", base_url_override=hub.url).get_client(HUB_URL)
    table = parse_rows(
        [
            ["HRIS Field", "HRIS Values", "10KC Value", "Visibility"],
            ["Team", "x", "- None -", "Public"],
            ["", "y", "+1 Crew", ""],
        ],
        "t",
    )
    apply_plan(client, plan_segments(table, client.list_segments()))
    assert [s["options"] for s in hub.hub(HUB_URL).segments] == [["- None -", "+1 Crew"]]


def test_a_changed_host_key_is_refused(sftp_block, sftp_server, tmp_path):
    from sandbox.sftp import _keypair

    impostor = sftp_block.model_copy(update={"host_key": _keypair()[1]})
    with pytest.raises(paramiko.BadHostKeyException):
        with impostor.get_client():
            pass


def test_a_host_key_is_required_and_checked_for_shape():
    with pytest.raises(ValueError, match="host_key must look like"):
        SftpServer(host="h", username="u", private_key="k", host_key="not a key")


@pytest.mark.parametrize(
    ("name", "size", "expected"),
    [
        ("../etc/passwd.csv", 10, "the file name contains a path"),
        ("a/b.csv", 10, "the file name contains a path"),
        ("..\\x.csv", 10, "the file name contains a path"),
        ("staff.xlsx", 10, "only .csv files are processed"),
        ("staff.csv", 3 * 2**20, "the file is 3 MiB, over the 1 MiB limit"),
        ("staff.CSV", 10, None),
    ],
)
def test_refusal_reasons(name, size, expected):
    assert refusal_reason(name, size, 2**20) == expected


@both_servers
def test_oversize_and_non_csv_uploads_are_refused_with_an_alert(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack
):
    customer, inbox = registered(tmp_path, sftp_server)
    (inbox / "huge.csv").write_bytes(b"Email\n" + b"x@acme.example\n" * 100_000)  # ~1.4 MiB > 1 MiB limit
    (inbox / "staff.xlsx").write_bytes(b"PK\x03\x04 not processed")
    result = sftp_watch(settle_seconds=0.5, start_processing=False)
    assert (result["claimed"], result["refused"]) == (0, 2)
    assert sorted(p.name.split("-", 1)[1] for p in (inbox / "refused").iterdir()) == [
        "huge.csv",
        "staff.xlsx",
    ]
    alerts = [m["text"] for m in slack.messages("monitoring-hris-files")]
    assert any("huge.csv" in a and "over the 1 MiB limit" in a for a in alerts)
    assert any("staff.xlsx" in a and "only .csv files" in a for a in alerts)


@both_servers
def test_a_broken_inbox_or_server_does_not_stop_the_others(
    sftp_block, sftp_server, tmp_path, clean_registrations
):
    good, inbox = registered(tmp_path, sftp_server)
    (inbox / "staff.csv").write_text(UPLOAD)
    no_inbox = make_customer()
    register(
        Registration(customer=no_inbox, mode="production", mapping_link="x")
    )  # its folder does not exist
    dead = make_customer()
    SftpServer(**{**sftp_block.model_dump(), "port": 1}).save("dead-server", overwrite=True)
    register(Registration(customer=dead, mode="production", mapping_link="x", sftp_block="dead-server"))

    result = sftp_watch(settle_seconds=0.5, start_processing=False)
    assert result["claimed"] == 1 and result["errors"] == 2
    assert original_name(only_claim(inbox)) == "staff.csv"


def _claimed(tmp_path, sftp_server, content: bytes, name: str = "staff.csv", **hub_members):
    customer, inbox = registered(tmp_path, sftp_server, **hub_members)
    (inbox / "processing").mkdir()
    (inbox / "processing" / name).write_bytes(content)
    return customer, inbox


@both_servers
def test_a_mass_deletion_waits_for_a_person_and_a_rejection_shares_nothing(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    members = "Email,First Name,Last Name,Status\n" + "".join(
        f"m{i}@acme.example,M,{i},active\n" for i in range(40)
    )
    customer, inbox = _claimed(
        tmp_path, sftp_server, b"Email,First Name\nm0@acme.example,M\n", hub=hub, members=members
    )  # a truncated export
    run = FlowInThread(
        process_upload,
        f"upload-{uuid.uuid4().hex[:8]}",
        customer_key=customer.key,
        upload="staff.csv",
    )
    answer(run.flow_run_id, "mass-deletion", decision="reject", reason="export was cut off", approver="Casey")
    assert run.result().is_cancelled()
    assert [m for m in slack.messages("am-acme") if m.get("files")] == []
    assert [m for m in slack.messages("am-acme") if m.get("files")] == []
    assert hub.hub(customer.hub_url).uploads == []
    [refused] = (inbox / "refused").iterdir()  # out of processing/, so nobody picks it up again
    assert refused.name.endswith("staff.csv") and not (inbox / "processing" / "staff.csv").exists()


@both_servers
def test_an_unreadable_upload_is_refused_with_a_one_line_reason(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    customer, inbox = _claimed(tmp_path, sftp_server, b"\x1f\x8b\x08\x00 gzip bytes", hub=hub)
    state = process_upload(customer.key, "staff.csv", return_state=True)
    assert state.is_failed() and "this is a gzip archive, not a text CSV file" in state.message
    assert len(list((inbox / "refused").iterdir())) == 1 and not (inbox / "processing" / "staff.csv").exists()
    [alert] = slack.messages("am-acme")
    assert "was not processed" in alert["text"] and "gzip" in alert["text"]


def test_a_slack_outage_during_a_tick_neither_fails_it_nor_strands_the_uploads_after_it(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack
):
    inboxes = [registered(tmp_path, sftp_server)[1] for _ in range(2)]
    for inbox in inboxes:
        (inbox / "staff.csv").write_text(UPLOAD)
    slack.inject(r"chat\.postMessage", "drop", times=100)  # Slack drops every post this tick

    result = sftp_watch(settle_seconds=0.5, start_processing=False)
    assert (result["claimed"], result["errors"]) == (2, 0)
    assert all(original_name(only_claim(inbox)) == "staff.csv" for inbox in inboxes)
    assert slack.messages("monitoring-hris-files") == []


def test_an_openssh_that_cannot_start_is_replaced_by_asyncssh_saying_why(tmp_path, monkeypatch):
    """The fallback is never silent: the SFTP tests fail under CI=true with this reason."""
    from sandbox import sftp

    monkeypatch.setattr(sftp, "SSHD", "/bin/false")  # an sshd that exits at once
    server = sftp.start_sftp_server(tmp_path / "inbox", keys_dir=tmp_path / "keys")
    try:
        assert server.kind == "asyncssh" and server.fallback.startswith("sshd did not start")
    finally:
        server.stop()
    monkeypatch.setattr(sftp, "SSHD", None)
    server = sftp.start_sftp_server(tmp_path / "inbox", keys_dir=tmp_path / "keys")
    try:
        assert server.fallback == "sshd is not installed (apt-get install openssh-server)"
    finally:
        server.stop()
    asked = sftp.start_sftp_server(tmp_path / "inbox", keys_dir=tmp_path / "keys", prefer="asyncssh")
    try:
        assert asked.kind == "asyncssh" and asked.fallback == ""
    finally:
        asked.stop()
