"""Downloads from customers' inboxes, against the real OpenSSH sshd: a symlink (to another customer's
inbox, to /dev/zero) or an oversized file is refused in one line and leaves no copy behind."""

from __future__ import annotations

import os

import pytest

from tasks.sftp import DownloadRefused, download, inbox_path

MB = 2**20
SECRET_ROW = "Email\nsecret@other.com\n"


@pytest.fixture
def inboxes(sftp_server):
    assert sftp_server.kind == "openssh"  # the server customers really talk to
    acme, other = sftp_server.root / "acme.com", sftp_server.root / "other.com"
    for inbox in (acme, other):
        (inbox / "processing").mkdir(parents=True)
    (other / "staff.csv").write_text(SECRET_ROW)
    return acme, other


def fetch(sftp_server, remote_name: str, local, max_bytes: int = MB):
    block = sftp_server.block()
    inbox = inbox_path(block.inbox_root, "acme.com")
    with block.get_client() as sftp:
        return download(sftp, f"{inbox}/processing/{remote_name}", local, max_bytes)


@pytest.mark.parametrize("target", ["other-inbox", "other-inbox-relative", "dev-zero", "folder"])
def test_a_link_or_a_non_file_in_an_inbox_is_never_downloaded(sftp_server, inboxes, tmp_path, target):
    acme, other = inboxes
    link = acme / "processing" / "staff.csv"
    if target == "other-inbox":
        link.symlink_to(other / "staff.csv")
    elif target == "other-inbox-relative":
        link.symlink_to(os.path.join("..", "..", "other.com", "staff.csv"))
    elif target == "dev-zero":
        link.symlink_to("/dev/zero")
    else:
        link.mkdir()
    local = tmp_path / "staff.csv"
    with pytest.raises(DownloadRefused) as refused:
        fetch(sftp_server, "staff.csv", local)
    assert str(refused.value) == "staff.csv: not a regular file (a link, folder or device); not downloaded"
    assert not local.exists()
    assert (other / "staff.csv").read_text() == SECRET_ROW  # untouched


def test_a_file_over_max_upload_mb_is_refused_and_no_partial_copy_stays(sftp_server, inboxes, tmp_path):
    acme, _ = inboxes
    with (acme / "processing" / "big.csv").open("wb") as big:
        big.write(b"Email\n" + b"a@acme.com\n" * (3 * MB // 11))
    local = tmp_path / "big.csv"
    with pytest.raises(DownloadRefused) as refused:
        fetch(sftp_server, "big.csv", local, max_bytes=MB)
    assert "over the limit of 1 MB" in str(refused.value) and "\n" not in str(refused.value)
    assert not local.exists()


def test_a_regular_file_within_the_limit_downloads_whole(sftp_server, inboxes, tmp_path):
    acme, _ = inboxes
    content = b"Email\n" + b"a@acme.com\n" * 50_000  # ~550 kB: several reads
    (acme / "processing" / "staff.csv").write_bytes(content)
    assert fetch(sftp_server, "staff.csv", tmp_path / "staff.csv").read_bytes() == content
