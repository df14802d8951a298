"""prefect.yaml points at flows that exist, with parameters those flows accept."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = CONFIG["deployments"]


def _load_flow(entrypoint: str):
    path, _, name = entrypoint.partition(":")
    assert (ROOT / path).is_file(), f"{path} does not exist"
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def test_every_flow_in_the_design_is_deployed_once():
    names = [d["name"] for d in DEPLOYMENTS]
    assert len(names) == len(set(names))
    assert {
        "setup-guides",
        "api-integration",
        "sftp-integration",
        "sftp-watch",
        "process-upload",
        "approval-reminders",
        "update-mapping",
        "mapping-review",
    } <= set(names)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_entrypoint_imports_and_parameters_match_the_flow(deployment):
    flow = _load_flow(deployment["entrypoint"])
    assert flow.name == deployment["name"], "deployments are named after their flow"
    accepted = set(inspect.signature(flow.fn).parameters)
    declared = set(deployment.get("parameters") or {})
    assert declared <= accepted, f"unknown parameters {declared - accepted}"
    assert deployment["work_pool"]["name"] == "hris-runbook"
    for schedule in deployment.get("schedules") or []:
        assert schedule.get("timezone"), "every cron schedule names its timezone"


def test_flows_run_from_this_checkout():
    [step] = CONFIG["pull"]
    assert step["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $HRIS_RUNBOOK_DIR }}"


@pytest.mark.parametrize("name", ["setup-guides", "api-integration", "sftp-integration"])
def test_the_csm_form_describes_every_customer_field(name):
    from prefect.utilities.callables import parameter_schema

    [deployment] = [d for d in DEPLOYMENTS if d["name"] == name]
    schema = parameter_schema(_load_flow(deployment["entrypoint"]).fn).model_dump_for_openapi()
    assert schema["required"] == ["customer"]
    customer = schema["definitions"]["Customer"]["properties"]
    assert set(customer) >= {
        "company_name",
        "contact_email",
        "platform",
        "email_domains",
        "tenant_url",
        "hub_url",
        "csm",
        "slack_channel",
    }
    assert all(field.get("description") for field in customer.values())


def test_the_update_mapping_form_asks_for_the_customer_and_the_new_sheet():
    from prefect.utilities.callables import parameter_schema

    from flows.update_mapping import update_mapping

    schema = parameter_schema(update_mapping.fn).model_dump_for_openapi()
    assert schema["required"] == ["customer", "sheet_link"]
    assert "Google Sheets link" in schema["properties"]["sheet_link"]["description"]


def readme_schedules() -> dict[str, tuple[list[str], int | None]]:
    """What README's Deployments table says of each deployment: its schedule as cron (UTC) and
    whether it runs one at a time. "every N min (UTC)" is `*/N * * * *`, "daily HH:MM UTC" `MM HH * * *`."""
    import re

    table = (ROOT / "README.md").read_text().partition("## Deployments (`prefect.yaml`)")[2]
    said = {}
    for name, started_by in re.findall(r"^\| `([a-z-]+)` \| ([^|]+) \|", table.partition("\n## ")[0], re.M):
        crons = [f"*/{n} * * * *" for n in re.findall(r"every (\d+) min \(UTC\)", started_by)]
        crons += [f"{int(m)} {int(h)} * * *" for h, m in re.findall(r"daily (\d\d):(\d\d) UTC", started_by)]
        assert ("schedule" in started_by) == bool(crons), f"README: {name}'s schedule is not one we read"
        said[name] = (crons, 1 if "one at a time" in started_by else None)
    return said


def test_schedules_and_one_at_a_time_are_what_the_readme_says():
    """Issue 19: the README's promise (sftp-watch every 15 min, one at a time, …) is what gets deployed."""
    declared = {
        d["name"]: (
            [s["cron"] for s in d.get("schedules") or [] if s.get("timezone") == "UTC"],
            d.get("concurrency_limit"),
        )
        for d in DEPLOYMENTS
    }
    assert declared == readme_schedules()
    assert readme_schedules()["sftp-watch"] == (["*/15 * * * *"], 1)


def test_mapping_review_runs_daily_and_its_form_names_the_customer_and_period():
    """Issue 23: the daily sweep takes no parameters; one customer's review takes the key and period."""
    from prefect.utilities.callables import parameter_schema

    from flows.mapping_review import mapping_review

    [deployment] = [d for d in DEPLOYMENTS if d["name"] == "mapping-review"]
    assert [s["cron"] for s in deployment["schedules"]] == ["0 7 * * *"]
    schema = parameter_schema(mapping_review.fn).model_dump_for_openapi()
    assert schema.get("required", []) == []
    assert "2026-Q4" in schema["properties"]["period"]["description"]
