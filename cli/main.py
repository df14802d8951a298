"""The `hris-runbook` command: `up` runs the local stack; `generate-files` runs the file engine;
`backup`, `restore` and `migrate-db` keep the stack's state (cli/state.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_MASS_DELETION = 3


def _generate_files(args: argparse.Namespace) -> int:
    from cli.engine_process import engine_only_process

    engine_only_process()
    from tasks.files import MassDeletion, generate_files, use_jemalloc
    from tasks.tabular import InputError

    use_jemalloc()
    try:
        result = generate_files(
            args.hris_csv,
            args.members_csv,
            args.mapping,
            args.out,
            max_deletion_pct=args.max_deletion_pct,
            allow_mass_deletion=args.allow_mass_deletion,
        )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MassDeletion as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return EXIT_MASS_DELETION
    s = result.summary
    print(
        f"{s['invites']} invites, {s['updates']} updates ({s['deactivations']} deactivations, "
        f"{s['reactivations']} reactivations), {s['deletions']} deletions, "
        f"{s['rejected_rows']} rejected rows, {len(s['unmapped_values'])} unmapped values -> {result.out_dir}"
        + "".join(f"; {note}" for note in s["notes"])
    )
    return 0


def _check_mapping(args: argparse.Namespace) -> int:
    """Print the mapping table's validation report, the same one the flows send to the customer."""
    import os

    from tasks.mapping import SheetsError, parse_mapping_link, read_mapping, validate_mapping
    from tasks.tabular import InputError

    # Parsed before Prefect is imported (tasks.mapping does not import it): a sheet needs the block
    # from the local stack's server unless PREFECT_API_URL says where else to look.
    try:
        is_link = parse_mapping_link(args.mapping).sheet_key is not None
    except SheetsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if is_link and "PREFECT_API_URL" not in os.environ:
        from cli import stack

        stack.configure_environment()
    import httpx

    from blocks import BlockNotConfigured, GoogleSheetsCredentials, load_block

    try:
        credentials = load_block(GoogleSheetsCredentials) if is_link else None
    except httpx.HTTPError as exc:
        print(
            f"error: cannot load the Google Sheets Credentials block from the Prefect API at "
            f"{os.environ.get('PREFECT_API_URL')} ({exc}): run `make up` or set PREFECT_API_URL",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except BlockNotConfigured as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        table = read_mapping(args.mapping, credentials)
    except (SheetsError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = validate_mapping(table)
    print(report.markdown(), end="")
    return EXIT_BAD_INPUT if report.errors else 0


def _serve_setup_links(args: argparse.Namespace) -> int:
    """The web app: the public listener (setup links, member-export pages, Slack) and the internal one
    (the status board); webapp/app.py lists every page."""
    from blocks import BlockNotConfigured
    from blocks.web_app import WebAppNotConfigured
    from tasks.customer import describe_validation_error
    from webapp.app import listeners, serve

    try:
        servers = listeners(args.block, args.host, args.port, args.internal_host, args.internal_port)
    except (BlockNotConfigured, WebAppNotConfigured, ValueError) as exc:  # ValidationError is a ValueError
        print(f"error: {describe_validation_error(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    serve(servers)
    return 0


def grace_words(days: int) -> str:
    """A registration's deletion grace as `customer show` and `set-grace` say it."""
    if not days:
        return "off (a member missing from an upload is deleted, as the runbook says)"
    return f"{days} days (a member missing from an upload is deactivated, deleted {days} days later)"


def _customer(args: argparse.Namespace) -> int:
    """`hris-runbook customer …`: read or change a customer's SFTP registration (the `sftp_watch_<key>`
    Variable) through the code the flows use, under the same lock, without hand-editing Variables."""
    from pydantic import ValidationError

    from tasks.customer import Person
    from tasks.registry import read_registrations, registration, remove_registration, update_registration

    def missing() -> int:
        print(
            f"error: {args.key}: no SFTP registration for this customer key "
            "(see `hris-runbook customer list`)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT

    if args.action == "list":
        found, problems = read_registrations()
        for reg in sorted(found, key=lambda r: r.customer.key):
            print(
                f"{reg.customer.key}  {reg.customer.company_name}  {reg.mode}  CSM {reg.customer.csm.label}"
            )
        for problem in problems:
            print(f"skipped: {problem}", file=sys.stderr)
        return 0
    if args.action == "show":
        reg = registration(args.key)
        if reg is None:
            return missing()
        c = reg.customer
        print(
            f"customer:          {c.company_name} ({c.key})\n"
            f"mode:              {reg.mode}{'' if reg.watching else ' (not watched)'}\n"
            f"CSM:               {c.csm.label}\n"
            f"upload frequency:  {reg.upload_frequency or 'not set (lateness not watched)'}\n"
            f"mapping reviews:   {reg.mapping_cadence or 'not set (mapping-review does not ask)'}\n"
            f"SFTP Server block: {reg.sftp_block}\n"
            f"mapping table:     {reg.mapping_link}\n"
            f"registered at:     {reg.registered_at.isoformat() if reg.registered_at else '-'}\n"
            f"waiting run:       {reg.waiting_run_id or '-'}\n"
            f"deletion grace:    {grace_words(reg.deletion_grace_days)}"
        )
        return 0
    if args.action == "remove":
        removed = remove_registration(args.key)
        if removed is None:
            return missing()
        print(f"removed {args.key}: sftp-watch no longer polls its inbox (the inbox and its files are kept)")
        if removed.waiting_run_id:
            print(f"note: run {removed.waiting_run_id} still waits for its first upload: cancel it in the UI")
        return 0

    if args.action == "set-csm":
        try:
            csm = Person(name=args.name, email=args.email)
        except ValidationError as exc:
            where = str(exc.errors()[0]["loc"][0])
            print(f"error: --{where}: {exc.errors()[0]['msg']}", file=sys.stderr)
            return EXIT_BAD_INPUT
        current = registration(args.key)
        if current is None:
            return missing()
        changes: dict = {"customer": current.customer.model_copy(update={"csm": csm})}
        said = f"CSM is now {csm.label}"
    elif args.action == "set-frequency":
        changes, said = {"upload_frequency": args.frequency}, f"upload frequency is now {args.frequency}"
    elif args.action == "set-grace":
        if not 0 <= args.days <= 365:
            print(f"error: days: {args.days} is not between 0 and 365", file=sys.stderr)
            return EXIT_BAD_INPUT
        changes, said = {"deletion_grace_days": args.days}, f"deletion grace is now {grace_words(args.days)}"
    elif args.action == "set-mapping-cadence":
        changes, said = {"mapping_cadence": args.cadence}, f"mapping reviews are now {args.cadence}"
    else:  # set-sftp
        from blocks import SftpServer, load_block

        try:
            load_block(SftpServer, args.block)
        except Exception as exc:  # noqa: BLE001 — missing or invalid: named in one line
            print(f"error: --block: {str(exc).splitlines()[0]}", file=sys.stderr)
            return EXIT_BAD_INPUT
        changes, said = {"sftp_block": args.block}, f"inbox is now on SFTP Server block {args.block!r}"
    if update_registration(args.key, **changes) is None:
        return missing()
    print(f"{args.key}: {said}")
    return 0


def _state(args: argparse.Namespace, stack) -> int:
    """backup, restore and migrate-db on the local stack's state (cli/state.py)."""
    stack.configure_environment()
    from cli import state

    try:
        if args.command == "backup":
            print(state.backup(args.file))
        elif args.command == "restore":
            print(state.restore(args.file, force=args.force))
        else:
            print(state.migrate_db(args.to, args.source))
    except state.StateRefused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def quiet_event_shutdown() -> None:
    """Prefect sends the events a command emitted (block loads) at exit and, on a slow machine, says
    "Still processing items" on stderr: a person's one-line answer must stay one line."""
    import logging

    logging.getLogger("EventsWorker").setLevel(logging.ERROR)  # the events are still sent


def main(argv: list[str] | None = None) -> int:
    quiet_event_shutdown()
    parser = argparse.ArgumentParser(prog="hris-runbook", description="The 10KC HRIS-integration runbook.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run Prefect server, stand-ins, deployments and a worker (make up)")
    up.add_argument(
        "--production",
        action="store_true",
        help="never save or start anything from sandbox/: refuse a missing or sandbox block, run doctor "
        "first (or set HRIS_PRODUCTION=1 for make up)",
    )
    boot = commands.add_parser("bootstrap", help="register blocks, save sandbox blocks, create the work pool")
    boot.add_argument(
        "--production", action="store_true", help="save nothing; refuse missing or sandbox blocks"
    )
    doctor = commands.add_parser(
        "doctor",
        help="the go-live check: one cheap call per configured system, Help Center links, URLs, secrets",
        description="Exit 0 only when every check passes; 1 otherwise. Reads the `default` blocks and the "
        "Variables from the Prefect API (the local stack's, or PREFECT_API_URL).",
    )
    doctor.add_argument("--block", default="default", help="name of the blocks to check")
    doctor.add_argument(
        "--hub-url",
        action="append",
        help="a customer's hub URL to call with the hub token (default: each registered customer's hub)",
    )
    generate = commands.add_parser(
        "generate-files",
        help="potential invites, profile updates and profile deletions from an HRIS upload",
        description="Compare an HRIS upload with the hub's member export. Exit 0: files written; "
        "2: bad input, nothing written; 3: the mass-deletion guard tripped, files written for review.",
    )
    generate.add_argument("--hris-csv", required=True, type=Path, help="the customer's HRIS upload (CSV)")
    generate.add_argument("--members-csv", required=True, type=Path, help="the hub's member export (CSV)")
    generate.add_argument("--mapping", required=True, type=Path, help="the data mapping table (CSV or XLSX)")
    generate.add_argument("--out", required=True, type=Path, help="folder for the output files")
    generate.add_argument(
        "--max-deletion-pct",
        type=float,
        default=20,
        help="stop when more than this %% of members would be deleted",
    )
    generate.add_argument(
        "--allow-mass-deletion", action="store_true", help="write the files even over the limit"
    )
    check = commands.add_parser(
        "check-mapping",
        help="check a data mapping table and print the report the customer would get",
        description="Exit 0: no errors (warnings may be shown); 2: errors to fix, or the table "
        "could not be read. A Google Sheets link is read with the `default` Google Sheets "
        "Credentials block.",
    )
    check.add_argument("--mapping", required=True, help="the table: a CSV/XLSX file or a Google Sheets link")
    links = commands.add_parser(
        "setup-links",
        help="serve the web app: long-lived WorkOS setup links and signed member-export upload pages",
    )
    links.add_argument("--host", default="127.0.0.1", help="interface of the public listener")
    links.add_argument("--port", type=int, default=8030, help="port of the public listener")
    links.add_argument(
        "--internal-host",
        default="127.0.0.1",
        help="interface of the internal listener (the status board); keep it private",
    )
    links.add_argument("--internal-port", type=int, default=8031, help="port of the internal listener")
    links.add_argument("--block", default="default", help="name of the Web App and WorkOS Credentials blocks")
    customer = commands.add_parser(
        "customer",
        help="show or change a customer's SFTP registration (CSM, upload frequency, SFTP server, "
        "deletion grace), or remove it",
        description="Works on the customer's sftp_watch_<key> Variable through the flows' own code, under "
        "the registration's lock. Exit 0: done; 2: no such customer or a bad value (one line).",
    )
    actions = customer.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every registered customer: key, company, mode, CSM")
    for name, text in [
        ("show", "what the registration holds"),
        ("remove", "offboard: stop watching the inbox (the inbox and its files are kept)"),
        ("set-csm", "a new CSM: named in upload summaries and reminders from now on"),
        ("set-frequency", "weekly or monthly: when an upload counts as overdue"),
        ("set-mapping-cadence", "monthly or quarterly: how often mapping-review asks for updated values"),
        ("set-sftp", "the SFTP Server block (saved in the UI) that holds the customer's inbox"),
        ("set-grace", "days a member missing from uploads stays deactivated before deletion (0: off)"),
    ]:
        action = actions.add_parser(name, help=text)
        action.add_argument("key", help="the customer key: their first email domain, e.g. acme.com")
        if name == "set-csm":
            action.add_argument("--name", required=True, help="the CSM's full name")
            action.add_argument("--email", required=True, help="the CSM's work email")
        if name == "set-frequency":
            action.add_argument("frequency", choices=["weekly", "monthly"])
        if name == "set-mapping-cadence":
            action.add_argument("cadence", choices=["monthly", "quarterly"])
        if name == "set-sftp":
            action.add_argument("--block", required=True, help="name of the SFTP Server block")
        if name == "set-grace":
            action.add_argument("days", type=int, help="0 to 365; 0 deletes at the first upload without them")
    backup = commands.add_parser(
        "backup",
        help="save .prefect/ (database by SQLite's online backup, result storage, generated files) in a file",
        description="A consistent copy even while the stack runs: the database first, then the result "
        "storage (once-records). Exit 0: written; 2: refused (one line says why).",
    )
    backup.add_argument("file", type=Path, help="the archive to write (.tar.gz); must not exist")
    restore = commands.add_parser(
        "restore",
        help="put a backup back into .prefect/ (the stack must be stopped)",
        description="Refuses while a Prefect server answers, and when a database or result storage is "
        "already there unless --force. Exit 0: restored; 2: refused.",
    )
    restore.add_argument("file", type=Path, help="an archive written by `hris-runbook backup`")
    restore.add_argument(
        "--force", action="store_true", help="replace the database and result storage that are there"
    )
    migrate = commands.add_parser(
        "migrate-db",
        help="copy the SQLite install (.prefect/prefect.db) into an empty PostgreSQL database",
        description="Blocks, Variables, deployments, the work pool and every run (suspended ones still "
        "resume) move; result storage stays where it is. The stack must be stopped. Then start it "
        "with HRIS_DATABASE_URL set to the same URL. Exit 0: copied; 2: refused, nothing kept.",
    )
    migrate.add_argument(
        "--to", required=True, help="the target: postgresql+asyncpg://user:password@host:5432/database"
    )
    migrate.add_argument(
        "--from", dest="source", type=Path, help="the SQLite file (default: prefect.db in .prefect/)"
    )
    args = parser.parse_args(argv)

    if args.command == "generate-files":
        return _generate_files(args)
    if args.command == "check-mapping":
        return _check_mapping(args)
    if args.command == "setup-links":
        return _serve_setup_links(args)

    from cli import stack

    if args.command == "up":
        return stack.up(args.production)
    if args.command == "customer":
        if "PREFECT_API_URL" not in os.environ:
            stack.configure_environment()
        return _customer(args)
    if args.command in ("backup", "restore", "migrate-db"):
        return _state(args, stack)
    if args.command == "doctor":
        if "PREFECT_API_URL" not in os.environ:
            stack.configure_environment()
        from cli.doctor import doctor, table

        results = doctor(args.block, hub_urls=args.hub_url)
        print(table(results))
        return 0 if all(r.ok for r in results) else 1
    from cli.bootstrap import GoLiveRefused, bootstrap, production_requested

    stack.configure_environment()
    try:
        plan = bootstrap(production_requested(args.production))
    except GoLiveRefused as refused:
        print(refused.code, file=sys.stderr)
        return EXIT_BAD_INPUT
    print(plan.line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
