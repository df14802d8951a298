"""Once-records written by older code still mean "done": no step acts twice after an upgrade.

Each folder in tests/once_records/ holds one record per once-step as some version of the code
stored it (`pickle-3218f86`: Prefect's pickles, before the JSON records; `v1`: the JSON records).
Every test copies a folder's records into the result storage under fresh keys, then reads them with
today's code: through `already_done`, and by calling the real once-task, whose body must not run.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import shutil
import uuid
from pathlib import Path

import pytest

from tests.once_records.write_records import to_json

FIXTURES = Path(__file__).parent / "once_records"
FOLDERS = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())


def once_tasks() -> dict:
    """Every once-only task of the code, by the step name its fixture record is stored under."""
    from flows.api_integration import long_lived_setup_link
    from flows.process_upload import remember_outcome
    from flows.sftp_integration import _watch_started, fetch_sample, files_from_sample, register_once
    from tasks.alerts import alert_once
    from tasks.approvals import record_decision
    from tasks.emails import send_email
    from tasks.hub_apply import apply_files, invite_members, remove_members, update_members
    from tasks.mapping import read_and_check_mapping
    from tasks.steps import _start_deployment, apply_segments_once
    from tasks.support import post_support_request
    from tasks.upload_gates import bind_shown_files
    from tasks.upload_receive import first_claim_of_content, receive_upload, report_duplicate
    from tasks.uploads import generate_upload_files, share_files

    return {
        "send-email": send_email,
        "post-support-request": post_support_request,
        "make-setup-link": long_lived_setup_link,
        "read-mapping-table": read_and_check_mapping,
        "apply-segments": apply_segments_once,
        "start-flow": _start_deployment,
        "record-decision": record_decision,
        "files-from-sample": files_from_sample,
        "fetch-sample": fetch_sample,
        "register-for-watching": register_once,
        "start-production-watch": _watch_started,
        "share-files": share_files,
        "receive-upload": receive_upload,
        "first-claim-of-content": first_claim_of_content,
        "generate-upload-files": generate_upload_files,
        "apply-files-to-hub": apply_files,
        "invite-members": invite_members,
        "update-members": update_members,
        "remove-members": remove_members,
        "report-duplicate": report_duplicate,
        "record-upload-decision": remember_outcome,
        "alert-once": alert_once,
        "bind-shown-files": bind_shown_files,
    }


def storage() -> Path:
    return Path(os.environ["PREFECT_LOCAL_STORAGE_PATH"])


def install(folder: str) -> tuple[dict[str, str], dict]:
    """Copy a fixture folder's records into the result storage under fresh keys: {step: once-key}."""
    prefix = f"once--records-{uuid.uuid4().hex[:8]}.example--"
    keys = {}
    storage().mkdir(parents=True, exist_ok=True)
    for path in (FIXTURES / folder).glob("once--records.example--*"):
        step = path.name.removeprefix("once--records.example--").removesuffix(".json")
        keys[step] = prefix + step
        shutil.copyfile(path, storage() / (prefix + path.name.removeprefix("once--records.example--")))
    return keys, json.loads((FIXTURES / folder / "expected.json").read_text())


def test_every_once_task_has_a_fixture_record_and_every_older_record_a_task(prefect_api):
    """A folder holds the steps of its day: each of them must still be a once-task today (a removed
    step's records would be forgotten), and the records this checkout writes cover every step."""
    from tests.once_records.write_records import record_values

    steps = set(once_tasks())
    assert set(record_values()) == steps
    assert any(set(install(folder)[0]) == steps for folder in FOLDERS)
    for folder in FOLDERS:
        keys, expected = install(folder)
        assert set(keys) == set(expected) and set(keys) <= steps, folder


@pytest.mark.parametrize("folder", FOLDERS)
def test_records_written_by_older_code_read_as_done(prefect_api, folder):
    from tasks.once import already_done

    keys, expected = install(folder)
    for step, key in keys.items():
        assert to_json(already_done(key)) == expected[step], step


@pytest.mark.parametrize("folder", FOLDERS)
def test_once_tasks_do_not_act_again_on_records_written_by_older_code(prefect_api, folder):
    """Every argument but the once-key is None: a body that ran would fail or return something else."""
    from prefect import flow

    from tasks.once import record_key

    keys, expected = install(folder)
    tasks = once_tasks()

    @flow(name="once-records-compatibility")
    def call_every_step() -> dict:
        results = {}
        for step in keys:
            task = tasks[step]
            arguments = {name: None for name in inspect.signature(task.fn).parameters}
            state = task(**(arguments | {"once_key": keys[step]}), return_state=True)
            results[step] = state.result(raise_on_failure=False)
        return results

    results = call_every_step()
    for step, value in results.items():
        assert not isinstance(value, BaseException), f"{step} ran again: {value!r}"
        assert to_json(value) == expected[step], step
        # What is stored now is plain versioned JSON naming a kind, never a Python class.
        stored = json.loads((storage() / record_key(keys[step])).read_text())
        assert stored["metadata"]["serializer"]["type"] == "hris-once-record", step
        record = json.loads(stored["result"])
        assert record["v"] == 1 and isinstance(record["kind"], str), step
        assert "flows." not in stored["result"] and "tasks." not in stored["result"], step


def test_an_old_record_naming_another_class_is_refused_not_run_and_not_executed(prefect_api, tmp_path):
    """A pickle in the result storage never runs code: an unknown class is refused with one line."""
    import base64

    from tasks.once import OnceRecordUnreadable, already_done

    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    key = f"once--records-{uuid.uuid4().hex[:8]}.example--send-email"
    wrapper = {
        "metadata": {"storage_key": key, "expiration": None, "serializer": {"type": "pickle"}},
        "result": base64.encodebytes(pickle.dumps(Payload())).decode(),
    }
    (storage() / key).write_text(json.dumps(wrapper))
    with pytest.raises(OnceRecordUnreadable, match=rf"once-step {key}: a record from an older version"):
        already_done(key)
    assert not marker.exists()


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_combined_apply_record_means_invites_updates_and_removals_are_done(prefect_api, folder):
    """Before the three hub uploads were steps of their own, one record held all three: the apply
    step reads it as done and asks the hub nothing (no hub block: a call would fail)."""
    from prefect import flow

    from tasks.hub_apply import apply_through_hub

    keys, expected = install(folder)

    @flow(name="combined-apply-record")
    def apply() -> dict:
        return apply_through_hub(None, None, None, keys["apply-files-to-hub"])

    assert apply() == expected["apply-files-to-hub"]
