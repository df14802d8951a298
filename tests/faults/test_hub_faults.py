"""Hub admin API faults (tasks/hub.py, the client the flows use): a segment create and the bulk
invite, update and removal uploads are retried through each fault, and the hub acts on each
exactly once: no duplicate, no loss."""

from __future__ import annotations

import pytest

from blocks import TenKCHub
from tasks.hub import HubError

FAULTS = ["rate_limit", "server_error", "hang", "drop", "lost_answer"]
HUB_URL = "https://acme.10kc.example/hub/main"


@pytest.fixture
def client(hub):
    return TenKCHub(api_token="hub-test", base_url_override=hub.url, timeout_seconds=1).get_client(HUB_URL)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_segment_is_created_once_whatever_happens_to_the_create(hub, client, fault):
    hub.inject("/segments$", fault, method="POST", hang_seconds=3)
    segment = client.create_segment("Department", "public")

    assert [kind for kind, _, _ in hub.faults_served] == [fault]
    assert hub.hub(HUB_URL).segments == [segment]
    assert segment["name"] == "Department" and segment["visibility"] == "public"


@pytest.mark.parametrize("fault", FAULTS)
def test_a_bulk_invite_is_acted_on_once_whatever_happens_to_the_upload(hub, client, tmp_path, fault):
    invites = tmp_path / "potential invites.csv"
    invites.write_text("Email,First Name,Last Name\nann@acme.example,Ann,Lee\nbo@acme.example,Bo,Chen\n")
    hub.inject("/invites/bulk$", fault, hang_seconds=3)

    assert client.upload_invites(invites, "once--acme.example--apply-test") == 2
    assert [kind for kind, _, _ in hub.faults_served] == [fault]
    assert [action for action, _ in hub.hub(HUB_URL).uploads] == ["invite"]  # acted on once
    assert len(hub.hub(HUB_URL).members) == 2
    assert len(hub.calls("/invites/bulk$")) == 2  # the faulted attempt and one retry


BULK_CHANGES = {  # the client's call, its path, and the members the hub must hold afterwards
    "update_members": (
        "/members/bulk-update$",
        "Email,Department\nann@acme.example,Sales\nbo@acme.example,Legal\n",
        {"ann@acme.example": "Sales", "bo@acme.example": "Legal", "cy@acme.example": "Ops"},
    ),
    "remove_members": (
        "/members/bulk-remove$",
        "Email\nann@acme.example\nbo@acme.example\n",
        {"cy@acme.example": "Ops"},
    ),
}


@pytest.mark.parametrize("call", BULK_CHANGES)
@pytest.mark.parametrize("fault", FAULTS)
def test_bulk_updates_and_removals_are_acted_on_once_whatever_happens_to_them(
    hub, client, tmp_path, fault, call
):
    """Issue 19: the apply's second and third uploads go through the same faults as the invites."""
    path, rows, after = BULK_CHANGES[call]
    members = hub.hub(HUB_URL).members
    for email in ("ann@acme.example", "bo@acme.example", "cy@acme.example"):
        members[email] = {"Email": email, "Department": "Ops", "Status": "active"}
    changes = tmp_path / "changes.csv"
    changes.write_text(rows)
    hub.inject(path, fault, hang_seconds=3)

    assert getattr(client, call)(changes, f"once--acme.example--{call}-test") == 2
    assert [kind for kind, _, _ in hub.faults_served] == [fault]
    assert [body for _, body in hub.hub(HUB_URL).uploads] == [rows.encode()]  # acted on once
    assert {email: m["Department"] for email, m in members.items()} == after  # nobody lost or left over
    assert len(hub.calls(path)) == 2  # the faulted attempt and one retry


def test_a_hub_that_keeps_failing_is_reported_in_one_line(hub, tmp_path):
    client = TenKCHub(api_token="hub-test", base_url_override=hub.url, timeout_seconds=1).get_client(HUB_URL)
    client.max_retries = 1
    hub.inject("/members/export$", "drop", times=5)
    with pytest.raises(HubError) as failure:
        client.export_members(tmp_path / "members.csv")
    assert str(failure.value) == "hub GET /members/export: no answer after 2 attempts (RemoteProtocolError)"
    assert not (tmp_path / "members.csv").exists()


def test_the_same_removals_in_a_later_step_are_acted_on_again(hub, client, tmp_path):
    """Bo left, came back, left again: the second removal file has the first's bytes, but it is
    another upload's step, so the hub must act on it (not answer it as a retry)."""
    removals = tmp_path / "profile deletions.csv"
    removals.write_text("Email\nbo@acme.example\n")
    members = hub.hub(HUB_URL).members
    members["bo@acme.example"] = {"Email": "bo@acme.example", "Status": "active"}
    assert client.remove_members(removals, "once--acme.example--apply-monday") == 1
    members["bo@acme.example"] = {"Email": "bo@acme.example", "Status": "active"}  # invited again

    assert client.remove_members(removals, "once--acme.example--apply-tuesday") == 1
    assert "bo@acme.example" not in members
    assert [action for action, _ in hub.hub(HUB_URL).uploads] == ["remove", "remove"]


def test_a_retry_after_the_updates_failed_does_only_what_is_left(prefect_api, hub, tmp_path):
    """Issue 20: the invites went out, the updates failed; the retry comes a day later (past the
    hub's 24 h Idempotency-Key memory) and must not invite everyone again."""
    import uuid

    from prefect import flow

    from tasks.hub_apply import apply_through_hub
    from tests.once_effects import make_files

    block = TenKCHub(api_token="hub-test", base_url_override=hub.url, timeout_seconds=1)
    make_files(tmp_path)
    key = f"once--acme.example--apply-{uuid.uuid4().hex[:8]}"

    @flow(name="apply-files-test")
    def apply() -> dict:
        return apply_through_hub(block, HUB_URL, str(tmp_path), key)

    hub.inject("/members/bulk-update$", "server_error", times=5)  # every attempt of the client
    failed = apply(return_state=True)
    assert failed.is_failed() and "hub POST /members/bulk-update: 503" in failed.message
    assert [action for action, _ in hub.hub(HUB_URL).uploads] == ["invite"]

    hub.forget_idempotency_keys()  # a day later
    assert apply() == {"invited": 1, "updated": 1, "removed": 1}
    assert [action for action, _ in hub.hub(HUB_URL).uploads] == ["invite", "update", "remove"]
    assert len(hub.calls("/invites/bulk$")) == 1  # the retry did not even ask
