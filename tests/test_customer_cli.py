"""`hris-runbook customer …`: an operator changes a customer's CSM, upload frequency or SFTP server, or
offboards them, without hand-editing the `sftp_watch_<key>` Variable; what sftp-watch and
process-upload read afterwards is the change."""

from __future__ import annotations

import pytest

from cli.main import main
from tests.conftest import delete_block, make_customer


@pytest.fixture
def registered(prefect_api, monkeypatch):
    from tasks.registry import Registration, register, unregister

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)  # as an operator's shell points at the server
    customer = make_customer()
    register(
        Registration(
            customer=customer,
            mode="production",
            mapping_link="https://docs.google.com/x",
            upload_frequency="weekly",
        )
    )
    yield customer.key
    unregister(customer.key)


def test_set_csm_frequency_and_sftp_server_change_what_the_flows_read(registered, capsys):
    from blocks import SftpServer
    from tasks.registry import registration, registrations

    assert (
        main(["customer", "set-csm", registered, "--name", "Robin New", "--email", "robin@10kc.example"]) == 0
    )
    assert main(["customer", "set-frequency", registered, "monthly"]) == 0
    reg = registration(registered)
    assert reg.customer.csm.label == "Robin New (robin@10kc.example)"
    assert reg.upload_frequency == "monthly"
    assert reg.mapping_link == "https://docs.google.com/x" and reg.mode == "production"  # the rest kept
    assert reg.customer.implementation_manager.email == "imani@10kc.example"

    assert main(["customer", "set-sftp", registered, "--block", "eu-sftp"]) == 2  # no such block: unchanged
    assert "error: --block: No SFTP Server block named 'eu-sftp'" in capsys.readouterr().err
    SftpServer(host="sftp.eu.example", username="hris", private_key="k", host_key="ssh-ed25519 AAAA").save(
        "eu-sftp", overwrite=True
    )
    try:
        assert main(["customer", "set-sftp", registered, "--block", "eu-sftp"]) == 0
    finally:
        delete_block(SftpServer, "eu-sftp")
    assert registration(registered).sftp_block == "eu-sftp"

    capsys.readouterr()
    assert main(["customer", "show", registered]) == 0
    shown = capsys.readouterr().out
    assert "Robin New (robin@10kc.example)" in shown and "monthly" in shown and "eu-sftp" in shown

    assert main(["customer", "set-csm", registered, "--name", "Robin", "--email", "robin-at-10kc"]) == 2
    assert capsys.readouterr().err.startswith("error: --email: ")
    assert registration(registered).customer.csm.name == "Robin New"

    assert main(["customer", "remove", registered]) == 0
    assert registration(registered) is None
    assert registered not in {r.customer.key for r in registrations()}  # sftp-watch no longer polls it
    assert main(["customer", "show", registered]) == 2
    assert capsys.readouterr().err.startswith(f"error: {registered}: no SFTP registration")


def test_set_grace_opts_a_customer_into_deletion_grace_and_back_out(registered, capsys):
    """Issue 23 §6: deletion grace is per customer, off (0) until set; a bad value changes nothing."""
    from tasks.registry import registration

    assert registration(registered).deletion_grace_days == 0
    assert main(["customer", "set-grace", registered, "14"]) == 0
    assert "deletion grace is now 14 days" in capsys.readouterr().out
    assert registration(registered).deletion_grace_days == 14
    assert registration(registered).upload_frequency == "weekly"  # the rest kept
    assert main(["customer", "show", registered]) == 0
    assert "deletion grace:    14 days" in capsys.readouterr().out
    assert main(["customer", "set-grace", registered, "400"]) == 2
    assert capsys.readouterr().err == "error: days: 400 is not between 0 and 365\n"
    assert main(["customer", "set-grace", registered, "0"]) == 0
    assert registration(registered).deletion_grace_days == 0


def test_a_change_waits_for_the_registration_lock_a_flow_holds(registered):
    """The CLI and the flows change a registration one at a time: a change made while a flow holds the
    lock lands after it, and both are kept."""
    import threading
    import time

    from tasks.registry import register, registration, registration_lock

    done = threading.Event()
    with registration_lock(registered):
        worker = threading.Thread(
            target=lambda: (main(["customer", "set-frequency", registered, "monthly"]), done.set())
        )
        worker.start()
        time.sleep(0.5)  # not a race: asserting it has NOT happened while the lock is held
        assert not done.is_set() and registration(registered).upload_frequency == "weekly"
        register(registration(registered).model_copy(update={"mapping_link": "https://docs.google.com/new"}))
    worker.join(timeout=60)
    assert done.is_set()
    reg = registration(registered)
    assert reg.upload_frequency == "monthly" and reg.mapping_link == "https://docs.google.com/new"
