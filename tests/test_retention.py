"""Generated staff-list files leave the worker after the retention period, and nothing else does."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.retention import purge_expired

NOW = datetime.now(UTC)  # the flow measures from the real clock too


def _write(path: Path, text: str = "Email\nx@example.com\n", age_days: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    _age(path, age_days)
    return path


def _age(path: Path, days: float) -> None:
    stamp = (NOW - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def _upload(root: Path, customer: str, name: str, age_days: float) -> Path:
    folder = root / customer / name
    for file in ("potential invites.csv", "profile updates.csv", "profile deletions.csv", "summary.json"):
        _write(folder / file, age_days=age_days)
    _age(folder, age_days)
    return folder


def test_uploads_past_retention_are_deleted_and_recent_ones_kept(tmp_path):
    old = _upload(tmp_path, "acme-com", "hris-2026-09-01", age_days=85)
    recent = _upload(tmp_path, "acme-com", "hris-2026-11-20", age_days=5)
    sample = _write(tmp_path / "acme-com" / "sample-hris.csv", age_days=40)
    gone = _upload(tmp_path, "globex-com", "hris-2026-08-01", age_days=100)

    purged = purge_expired(tmp_path, timedelta(days=30), NOW)

    assert (purged.entries, purged.kept) == (3, 1)
    assert purged.bytes == (4 + 1 + 4) * len("Email\nx@example.com\n")
    assert not old.exists() and not sample.exists()
    assert sorted(p.name for p in recent.iterdir()) == [
        "potential invites.csv",
        "profile deletions.csv",
        "profile updates.csv",
        "summary.json",
    ]
    assert not gone.parent.exists(), "a customer folder left empty goes too"


def test_a_folder_is_as_new_as_its_newest_file(tmp_path):
    folder = _upload(tmp_path, "acme-com", "hris-2026-09-01", age_days=60)
    _write(folder / "profile updates.csv", age_days=1)  # rewritten yesterday
    _age(folder, 60)

    assert purge_expired(tmp_path, timedelta(days=30), NOW).entries == 0
    assert folder.is_dir()


def test_links_are_removed_never_followed(tmp_path):
    outside = _write(tmp_path / "elsewhere" / "keep.csv", age_days=90)
    root = tmp_path / "files"
    link = root / "acme-com" / "linked"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside.parent, target_is_directory=True)
    _age(link, 90)

    purged = purge_expired(root, timedelta(days=30), NOW)

    assert purged.entries == 1
    assert not link.is_symlink() and outside.read_text().startswith("Email")


def test_no_files_yet_is_not_an_error(tmp_path):
    assert purge_expired(tmp_path / "never-made", timedelta(days=30), NOW).entries == 0
    with pytest.raises(ValueError, match="positive"):
        purge_expired(tmp_path, timedelta(0), NOW)


@pytest.fixture
def files_variable(prefect_api, tmp_path, clean_registrations):
    from prefect.variables import Variable

    Variable.set("hris_files_dir", str(tmp_path / "files"), overwrite=True)
    yield tmp_path / "files"
    for name in ("hris_files_dir", "hris_files_retention_days", "sftp_archive_retention_days"):
        Variable.unset(name)


def test_the_daily_flow_reads_its_folder_and_retention_from_variables(files_variable):
    from prefect.variables import Variable

    from flows.purge_files import purge_old_files

    stale = _upload(files_variable, "acme-com", "hris-2026-10-01", age_days=20)
    fresh = _upload(files_variable, "acme-com", "hris-2026-11-24", age_days=1)
    assert purge_old_files()["deleted"] == 0  # default: 30 days

    Variable.set("hris_files_retention_days", 14, overwrite=True)
    result = purge_old_files()

    assert (result["deleted"], result["kept"], result["retention_days"]) == (1, 1, 14)
    assert not stale.exists() and fresh.is_dir()


@pytest.mark.parametrize("sftp_server", ["openssh", "asyncssh"], indirect=True)
def test_handled_uploads_leave_the_sftp_server_after_their_retention(sftp_block, sftp_server):
    from tasks.sftp import purge_handled

    inbox = sftp_server.root / "acme-com"
    waiting = _write(inbox / "new-upload.csv", age_days=200)  # not handled yet: never touched
    claimed = _write(inbox / "processing" / "staff.csv", age_days=200)
    old = _write(inbox / "archive" / "20260101T000000Z-staff.csv", age_days=120)
    recent = _write(inbox / "archive" / "20261101T000000Z-staff.csv", age_days=20)
    refused = _write(inbox / "refused" / "20260101T000000Z-staff.xlsx", age_days=120)

    with sftp_block.get_client() as sftp:
        assert purge_handled(sftp, str(inbox), NOW - timedelta(days=90)) == 2
        assert purge_handled(sftp, str(sftp_server.root / "no-such-inbox"), NOW) == 0

    assert not old.exists() and not refused.exists()
    assert waiting.exists() and claimed.exists() and recent.exists()


def test_an_unreachable_sftp_server_is_reported_and_the_rest_still_purged(
    files_variable, sftp_block, sftp_server
):
    from flows.purge_files import purge_old_files
    from tasks.registry import Registration, register
    from tests.conftest import make_customer

    for block_name in ("default", "retired-server"):
        customer = make_customer()
        register(
            Registration(customer=customer, mode="production", mapping_link="map.csv", sftp_block=block_name)
        )
        if block_name == "default":
            archived = _write(sftp_server.root / customer.key / "archive" / "old.csv", age_days=100)
    generated = _upload(files_variable, customer.key, "hris-2026-01-01", age_days=300)

    state = purge_old_files(return_state=True)

    assert state.is_failed()
    assert state.message.startswith("SFTP server retired-server: BlockNotConfigured")
    assert not archived.exists() and not generated.exists()


def test_a_bad_retention_variable_fails_the_run_with_one_line(files_variable):
    from prefect.variables import Variable

    from flows.purge_files import purge_old_files

    folder = _upload(files_variable, "acme-com", "hris-2026-01-01", age_days=300)
    Variable.set("hris_files_retention_days", "thirty", overwrite=True)

    state = purge_old_files(return_state=True)

    assert state.is_failed()
    assert state.message == "Variable hris_files_retention_days: 'thirty' is not a number of days > 0"
    assert folder.is_dir(), "nothing is deleted on a bad setting"


def test_step_9_says_plainly_when_the_files_were_purged_first(prefect_api, tmp_path):
    from tasks.hub_apply import files_gone

    folder = str(_upload(tmp_path, "acme-com", "staff-2026-11", age_days=0))
    assert files_gone(folder, "staff-2026-11.csv", "apply-never-done-" + os.urandom(4).hex()) is None

    purge_expired(tmp_path, timedelta(days=1), NOW + timedelta(days=2))

    assert files_gone(folder, "staff-2026-11.csv", "apply-never-done-" + os.urandom(4).hex()) == (
        "The files from staff-2026-11.csv are no longer on the worker (older than "
        "hris_files_retention_days): apply the copies in the Slack thread in the hub by hand"
    )


def test_unfinished_work_keeps_its_files_past_the_retention(files_variable, sftp_block, sftp_server):
    """Issue 20: purge-old-files deleted an onboarding's sample and its files after 30 days while
    sftp-integration still needed them (steps 4 and 6), and an upload's files while its run waited
    at the apply gate. Only finished work is purged."""
    from flows.purge_files import purge_old_files
    from tasks.registry import Registration, register
    from tests.conftest import make_customer
    from tests.test_reminders import suspended_upload_runs

    onboarding = make_customer()
    register(Registration(customer=onboarding, mode="onboarding", mapping_link="map.csv", watching=False))
    sample = _write(files_variable / onboarding.key / "sample-staff.csv", age_days=40)
    sample_files = _upload(files_variable, onboarding.key, "sample-staff", age_days=40)
    [waiting] = suspended_upload_runs(onboarding.key, 1)  # its claim: 20261201T090000Z-staff.csv
    waiting_files = _upload(files_variable, onboarding.key, "20261201T090000Z-staff", age_days=40)
    decided = _upload(files_variable, onboarding.key, "20261101T090000Z-staff", age_days=40)
    finished = make_customer(email_domains=["globex.example"], contact_email="it@globex.example")
    register(Registration(customer=finished, mode="production", mapping_link="map.csv"))
    done_sample = _write(files_variable / finished.key / "sample-staff.csv", age_days=40)

    result = purge_old_files()

    assert sample.is_file() and sample_files.is_dir() and waiting_files.is_dir()
    assert not decided.exists() and not done_sample.exists()
    assert (result["deleted"], result["kept"]) == (2, 3)
