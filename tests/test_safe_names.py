"""Names from outside (SFTP listings, run parameters, form answers) are never paths."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.sftp_integration import CustomerReady, fetch_sample
from tasks.customer import describe_validation_error
from tasks.registry import Registration
from tasks.sftp import (
    UnsafeName,
    archive,
    claim,
    download,
    inbox_path,
    look,
    refusal_reason,
    refuse,
    safe_file_name,
)
from tests.conftest import make_customer

HOSTILE = [
    "../other/staff.csv",
    "/etc/passwd",
    "a/b.csv",
    "a\\b.csv",
    "..",
    ".",
    "",
    ".hidden.csv",
    "nul\x00.csv",
    "line\nbreak.csv",
    "bell\x07.csv",
    "x" * 300 + ".csv",
]


@pytest.mark.parametrize("name", ["staff.csv", "HR export 2026-01.csv", "<!channel>.csv", "Übersicht.csv"])
def test_a_plain_file_name_is_accepted_as_it_is(name):
    assert safe_file_name(name, "upload") == name


@pytest.mark.parametrize("name", HOSTILE)
def test_a_name_that_is_not_one_plain_component_is_refused_with_one_line(name):
    with pytest.raises(UnsafeName) as caught:
        safe_file_name(name, "upload")
    message = str(caught.value)
    assert message.startswith("upload ") and "\n" not in message and "\x00" not in message


@pytest.fixture
def two_inboxes(sftp_server):
    """Acme's inbox, and another customer's with an upload in it."""
    acme = sftp_server.root / "acme.com"
    other = sftp_server.root / "other.com"
    for inbox in (acme, other):
        inbox.mkdir()
        (inbox / "processing").mkdir()
    (other / "staff.csv").write_text("Email\nsecret@other.com\n")
    (other / "processing" / "staff.csv").write_text("Email\nsecret@other.com\n")
    return acme, other


def test_inbox_operations_refuse_names_that_walk_out_of_the_inbox(sftp_server, two_inboxes, tmp_path):
    acme, other = two_inboxes
    block = sftp_server.block()
    inbox = inbox_path(block.inbox_root, "acme.com")
    with block.get_client() as sftp:
        for operation in (
            lambda: claim(sftp, inbox, "../other.com/staff.csv"),
            lambda: archive(sftp, inbox, "../../other.com/processing/staff.csv"),
            lambda: refuse(sftp, inbox, "../other.com/staff.csv"),
            lambda: download(
                sftp, f"{inbox}/processing/../../other.com/staff.csv", tmp_path / "staff.csv", 2**20
            ),
        ):
            with pytest.raises(UnsafeName):
                operation()
    assert (other / "staff.csv").exists() and (other / "processing" / "staff.csv").exists()
    assert sorted(p.name for p in acme.rglob("*")) == ["processing"]
    assert not (tmp_path / "staff.csv").exists()


def test_a_listed_upload_with_a_control_character_is_refused_and_moved_out_of_the_way(sftp_server):
    inbox_dir = sftp_server.root / "acme.com"
    inbox_dir.mkdir()
    (inbox_dir / "staff\x1b[2J.csv").write_text("Email\na@acme.com\n")
    (inbox_dir / "a\\staff.csv").write_text("Email\na@acme.com\n")  # one name on a POSIX server
    block = sftp_server.block()
    inbox = inbox_path(block.inbox_root, "acme.com")
    with block.get_client() as sftp:
        seen = look(sftp, inbox)
        reasons = {name: refusal_reason(name, s.size, 2**20) for name, s in seen.items()}
        assert reasons == {
            "staff\x1b[2J.csv": "the file name contains a control character",
            "a\\staff.csv": "the file name contains a path",
        }
        moved = sorted(refuse(sftp, inbox, name).rsplit("/", 1)[1] for name in seen)
    assert list(inbox_dir.glob("*.csv")) == []
    kept = sorted(p.name for p in (inbox_dir / "refused").iterdir())
    assert kept == moved
    assert sorted(name.split("-", 1)[1] for name in kept) == ["a_staff.csv", "staff_[2J.csv"]


def test_the_sample_name_from_the_form_is_checked_before_anything_is_fetched(
    sftp_block, sftp_server, two_inboxes
):
    answer = {
        "upload_frequency": "weekly",
        "sftp_server_confirmed": True,
        "mapping_link": "https://docs.google.com/spreadsheets/d/x",
        "answered_by": "Casey",
    }
    with pytest.raises(ValidationError) as caught:
        CustomerReady(sample_csv="../other.com/staff.csv", **answer)
    assert describe_validation_error(caught.value).startswith("sample_csv: sample CSV name '../other.com/")

    reg = Registration(
        customer=make_customer(email_domains=["acme.com"]), mode="onboarding", mapping_link="m"
    )
    with pytest.raises(UnsafeName):
        fetch_sample.fn(reg, "../other.com/staff.csv", "once--test--sample")
    acme, other = two_inboxes
    assert (other / "staff.csv").exists() and sorted(p.name for p in acme.rglob("*")) == ["processing"]
