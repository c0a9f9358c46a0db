"""Command line: python -m app <command>."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from app.auth.permissions import Role


class CommandError(Exception):
    """A problem the operator can fix; printed without a traceback."""


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())


def _settings():
    from app.core.config import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise CommandError(f"invalid settings: {problems}") from None


def migrate(revision: str = "head") -> None:
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    _settings()
    root = Path(__file__).resolve().parent.parent
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    command.upgrade(config, revision)


async def _in_transaction(work: Callable) -> object:
    import app.models  # noqa: F401 - every table, so relationships and foreign keys resolve
    from app.core.db import make_engine, make_sessionmaker

    engine = make_engine(_settings())
    try:
        async with make_sessionmaker(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


def _run(work: Callable[..., Awaitable]) -> object:
    from app.core.errors import DomainError

    try:
        return asyncio.run(_in_transaction(work))
    except DomainError as exc:
        raise CommandError(exc.detail) from None


def seed_demo(_: argparse.Namespace) -> None:
    from app.core.config import Environment
    from app.reference.demo import demo_credentials, seed_demo

    settings = _settings()
    if settings.env is Environment.production:
        raise CommandError("seed-demo loads demo accounts with known passwords; not in production")
    report = _run(seed_demo)
    created = ", ".join(f"{n} {what}" for what, n in report.created.items()) or "nothing new"
    print(f"Demo region loaded ({created}).")
    print("Demo logins (dev only):")
    print("\n".join(demo_credentials()))


def create_user(args: argparse.Namespace) -> None:
    from sqlmodel import select

    from app.accounts.schemas import UserCreate
    from app.accounts.service import create_user as create
    from app.reference.models import Agency

    async def work(session):
        agency_id = None
        if args.agency:
            agency = (await session.exec(select(Agency).where(Agency.code == args.agency))).first()
            if agency is None:
                raise CommandError(f"--agency: no agency with code {args.agency!r}")
            agency_id = agency.id
        data = UserCreate(
            username=args.username,
            password=args.password,
            role=args.role,
            agency_id=agency_id,
            full_name=args.full_name or "",
        )
        return await create(session, data)

    try:
        user = _run(work)
    except ValidationError as exc:
        raise CommandError(_validation_message(exc)) from None
    print(f"Created user {user.username} (id {user.id}, role {user.role}).")


def create_client(args: argparse.Namespace) -> None:
    from app.accounts.schemas import ClientCreate
    from app.accounts.service import create_client as create

    try:
        data = ClientCreate(name=args.name, source_system=args.source, role=Role.integration)
    except ValidationError as exc:
        raise CommandError(_validation_message(exc)) from None
    client, secret = _run(lambda session: create(session, data))
    print(f"client_id: {client.client_id}")
    print(f"client_secret: {secret}")
    print("The secret is shown only now; store it in the client system's vault.")


def erase_personal_data(args: argparse.Namespace) -> None:
    from app.privacy.service import erase_expired

    days = args.older_than_days
    if days is None:
        days = _settings().personal_data_retention_days
    if days < 1:
        raise CommandError("--older-than-days: at least 1")
    result = _run(lambda session: erase_expired(session, days, dry_run=args.dry_run))
    verb = "would erase" if args.dry_run else "erased"
    print(
        f"Personal data {verb} from {result.cases} cases closed or rejected before "
        f"{result.cutoff:%Y-%m-%d %H:%M} UTC ({days} days)."
    )


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from app.observability.logging import logging_config
    from app.observability.metrics import shared_across_workers

    settings = _settings()
    with shared_across_workers(args.workers):
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=True,
            forwarded_allow_ips=settings.trusted_proxies or None,  # None: loopback only
            access_log=not settings.log_access,  # ours (app.observability) replaces it
            log_config=logging_config(settings),  # applied in every worker process
            server_header=False,
        )


def worker(args: argparse.Namespace) -> None:
    from app.observability.logging import configure_logging
    from app.webhooks.delivery import serve as serve_worker

    settings = _settings()
    configure_logging(settings)
    done = asyncio.run(serve_worker(settings, once=args.once))
    if done is not None:
        print(", ".join(f"{what}: {n}" for what, n in done.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="RegionDesk")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("migrate", help="apply database migrations").set_defaults(
        func=lambda _: migrate()
    )
    commands.add_parser("seed-demo", help="load the demo region (dev only)").set_defaults(
        func=seed_demo
    )
    user = commands.add_parser("create-user", help="create a user")
    user.add_argument("--username", required=True)
    user.add_argument("--password", required=True)
    user.add_argument("--role", required=True, choices=[r.value for r in Role])
    user.add_argument("--agency", help="agency code, required for the agency role")
    user.add_argument("--full-name")
    user.set_defaults(func=create_user)

    client = commands.add_parser("create-client", help="register an integration client")
    client.add_argument("--name", required=True)
    client.add_argument("--source", required=True, help="the source system it submits for")
    client.set_defaults(func=create_client)

    erase = commands.add_parser(
        "erase-personal-data",
        help="remove personal data of cases finished longer ago than the retention period",
    )
    erase.add_argument("--older-than-days", type=int, help="default: the retention setting")
    erase.add_argument("--dry-run", action="store_true", help="only count the cases")
    erase.set_defaults(func=erase_personal_data)

    run = commands.add_parser("serve", help="serve the API with uvicorn")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--workers", type=int, default=1)
    run.set_defaults(func=serve)

    work = commands.add_parser("worker", help="deliver webhooks and run the periodic jobs")
    work.add_argument("--once", action="store_true", help="one pass, then exit (cron, tests)")
    work.set_defaults(func=worker)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
