"""Faults while claiming an upload (tasks/sftp.py claim) on a real SFTP server (asyncssh, whose
renames take injected faults): an unanswered rename is not mistaken for "another watcher won";
the upload ends in processing/ once, or stays in the inbox, and is never lost."""

from __future__ import annotations

import pytest

from tasks.sftp import ClaimUnclear, claim

pytestmark = pytest.mark.parametrize("sftp_server", ["asyncssh"], indirect=True)


@pytest.fixture
def inbox(sftp_server):
    folder = sftp_server.root / "acme-com"
    folder.mkdir()
    (folder / "staff.csv").write_bytes(b"Email,First Name\nann@acme.example,Ann\n")
    return folder


def claim_with_short_timeout(sftp_server, inbox) -> bool:
    # SFTP calls time out after 4 × 3 s; 3 s for each step of the SSH handshake, which a busy machine
    # can take more than half a second over
    block = sftp_server.block(connect_timeout_seconds=3)
    with block.get_client() as sftp:
        return claim(sftp, str(inbox), "staff.csv")


@pytest.mark.parametrize("fault", ["hang", "timeout_after_acting"])
def test_an_unanswered_rename_still_claims_the_upload(sftp_server, inbox, fault):
    sftp_server.inject(fault, hang_seconds=120)  # far past the client's 12 s: it never answers in time

    assert claim_with_short_timeout(sftp_server, inbox) is True
    assert sftp_server.faults_served == [fault]
    assert [p.name for p in (inbox / "processing").iterdir()] == ["staff.csv"]
    assert not (inbox / "staff.csv").exists()


@pytest.mark.parametrize(("fault", "left_in"), [("drop", "acme-com"), ("lost_answer", "acme-com/processing")])
def test_a_server_gone_mid_claim_is_reported_with_where_the_upload_is(sftp_server, inbox, fault, left_in):
    sftp_server.inject(fault)

    with pytest.raises(ClaimUnclear) as failure:
        claim_with_short_timeout(sftp_server, inbox)

    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("claiming staff.csv: the SFTP server did not answer the rename")
    assert message.endswith(f"still in {inbox} or in {inbox}/processing, where the next watch picks it up")
    [where] = [p for p in (inbox, inbox / "processing") if (p / "staff.csv").exists()]
    assert str(where.relative_to(sftp_server.root)) == left_in  # exactly one copy, not lost
