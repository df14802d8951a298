"""One `sftp-watch` tick over N customer inboxes on a local OpenSSH server, next to a baseline that
opens one connection per inbox (as a per-customer loop would).

    .venv/bin/python -m benchmarks.sftp_watch            # 50, 100 and 200 inboxes, 5 with new files
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inboxes", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--with-files", type=int, default=5)
    parser.add_argument("--settle-seconds", type=float, default=2.0)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="bench-watch-")
    os.environ.update(PREFECT_HOME=home, NO_PROXY="127.0.0.1,localhost", PREFECT_LOGGING_LEVEL="WARNING")
    from prefect.testing.utilities import prefect_test_harness

    from flows.sftp_watch import sftp_watch
    from sandbox.sftp import start_sftp_server
    from tasks.customer import Customer
    from tasks.registry import Registration, register, registrations, unregister
    from tasks.sftp import claim, inbox_path, look, settled

    results = []
    with prefect_test_harness(server_startup_timeout=120):
        for count in args.inboxes:
            root = Path(tempfile.mkdtemp(prefix="bench-inboxes-"))
            log = root.parent / f"{root.name}-sshd.log"
            server = start_sftp_server(root / "inbox", log_file=log)
            block = server.block()
            block.save("default", overwrite=True)
            for reg in registrations():
                unregister(reg.customer.key)
            keys = []
            for i in range(count):
                customer = Customer(
                    company_name=f"Customer {i}",
                    contact_first_name="Admin",
                    contact_email=f"admin@c{i}.example",
                    platform="Workday",
                    email_domains=[f"c{i}.example"],
                    tenant_url="https://t.10kc.example",
                    hub_url="https://t.10kc.example/hub",
                    csm={"name": "CSM", "email": "csm@10kc.example"},
                    implementation_manager={"name": "IM", "email": "im@10kc.example"},
                    slack_channel="#am-bench",
                )
                register(Registration(customer=customer, mode="production", mapping_link="unused"))
                (server.root / customer.key).mkdir()
                keys.append(customer.key)

            def drop_files(tag: str, keys=keys, server=server) -> None:
                for key in keys[: args.with_files]:
                    (server.root / key / f"{tag}.csv").write_text("Email\nx@example.com\n" * 1000)

            # the watcher: one connection per server, all inboxes looked at, one settle wait
            drop_files("watch")
            before = log.read_text().count("Accepted publickey") if log.exists() else 0
            started = time.perf_counter()
            summary = sftp_watch(settle_seconds=args.settle_seconds, start_processing=False)
            watch_seconds = time.perf_counter() - started
            watch_connections = log.read_text().count("Accepted publickey") - before

            # baseline: a connection per inbox, each settled on its own
            drop_files("baseline")
            before = log.read_text().count("Accepted publickey")
            started = time.perf_counter()
            claimed = 0
            for key in keys:
                with block.get_client() as sftp:
                    inbox = inbox_path(block.inbox_root, key)
                    first = look(sftp, inbox)
                    if first:
                        time.sleep(args.settle_seconds)
                        for upload in settled(first, look(sftp, inbox)):
                            claimed += claim(sftp, inbox, upload.name)
            baseline_seconds = time.perf_counter() - started
            baseline_connections = log.read_text().count("Accepted publickey") - before
            server.stop()
            row = {
                "inboxes": count,
                "with_new_files": args.with_files,
                "watch_seconds": round(watch_seconds, 2),
                "watch_connections": watch_connections,
                "watch_claimed": summary["claimed"],
                "baseline_seconds": round(baseline_seconds, 2),
                "baseline_connections": baseline_connections,
                "baseline_claimed": claimed,
                "settle_seconds": args.settle_seconds,
            }
            results.append(row)
            print(
                f"{count:4d} inboxes: watcher {row['watch_seconds']:6.2f} s, "
                f"{watch_connections} connection(s), "
                f"{summary['claimed']} claimed | baseline {row['baseline_seconds']:6.2f} s, "
                f"{baseline_connections} connections, {claimed} claimed",
                flush=True,
            )
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "sftp-watch.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
