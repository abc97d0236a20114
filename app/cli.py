"""The `psy-annotator` command line."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import ConfigError, Settings, get_settings

if TYPE_CHECKING:
    from app.models import Project, Role
    from app.projects.schemas import ProjectCreate

T = TypeVar("T")
FORMAT_NAMES = ("psy_insight_v7", "psy_insight_old", "esconv", "jsonl", "csv", "cpsycound")
cli = typer.Typer(help="psy-annotator: annotate counseling dialogues.", no_args_is_help=True)
token_cli = typer.Typer(help="Personal API tokens.", no_args_is_help=True)
project_cli = typer.Typer(help="Projects and their members.", no_args_is_help=True)
cli.add_typer(token_cli, name="token")
cli.add_typer(project_cli, name="project")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder (embedded database, secret). Default: ./data"),
]


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def load_settings(data_dir: Path | None) -> Settings:
    if data_dir is not None:
        os.environ["PSY_ANNOTATOR_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        settings.resolve_secret()
    except (ConfigError, ValidationError) as exc:
        fail(str(exc), 2)
    return settings


def database_url(settings: Settings) -> str:
    from app.db import resolve_database_url

    if settings.embedded:
        typer.echo(f"embedded PostgreSQL, data folder: {settings.resolved_data_dir()}", err=True)
    return resolve_database_url(settings)


def run_with_db(settings: Settings, work: Callable[..., Awaitable[T]], url: str | None = None) -> T:
    """Run `work(db_session)` in one transaction; domain errors exit non-zero with the message."""
    from app.errors import DomainError
    from app.runtime import init_database

    url = url or database_url(settings)

    async def main() -> T:
        database = init_database(url, pool_size=2)
        try:
            async with database.sessionmaker() as db, db.begin():
                return await work(db)
        finally:
            await database.engine.dispose()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        fail(str(exc))
    except ValidationError as exc:
        from app.forms import field_errors

        fail("; ".join(f"{k}: {v}" for k, v in field_errors(exc).items()), 2)
    raise AssertionError("unreachable")


def migrate_to_head(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from app.config import ROOT_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT_DIR / "migrations"))
    cfg.attributes["database_url"] = url
    command.upgrade(cfg, "head")


@cli.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply the database migrations."""
    settings = load_settings(data_dir)
    migrate_to_head(database_url(settings))
    typer.echo("database is at the latest migration")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: DataDir = None,
    worker: Annotated[bool, typer.Option(help="Run a job worker in this process.")] = True,
) -> None:
    """Migrate, create the demo on first start (development), and serve the app."""
    import uvicorn

    from app.main import create_app

    settings = load_settings(data_dir)
    url = database_url(settings)
    migrate_to_head(url)
    if settings.demo or (settings.demo is None and settings.env == "development"):
        project_id = run_with_db(settings, _first_start, url)
        if project_id is not None:
            asyncio.run(_demo_dialogues(url, project_id))
    app = create_app(settings, database_url=url, run_worker=worker)
    h, p = host or settings.host, port or settings.port
    typer.echo(f"serving on http://{h}:{p}", err=True)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler found at start;
    # this one exits normally, so exit hooks run and the embedded PostgreSQL stops too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    uvicorn.run(app, host=h, port=p, log_level="info", proxy_headers=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


async def _first_start(db: AsyncSession) -> int | None:
    from app.demo import create_demo_admin, has_users, load_demo

    if await has_users(db):
        return None
    admin, password = await create_demo_admin(db)
    project = await load_demo(db, admin)
    typer.secho(
        "\nFirst start: created the administrator account (shown only this once):\n"
        f"  email:    {admin.email}\n  password: {password}\n",
        fg=typer.colors.GREEN,
        err=True,
    )
    return project.id


async def _demo_dialogues(url: str, project_id: int) -> None:
    from app.demo import import_demo_dialogues
    from app.runtime import init_database

    database = init_database(url, pool_size=2)
    try:
        for batch in await import_demo_dialogues(database, project_id):
            typer.echo(f"demo: imported {batch.file_name} ({batch.status})", err=True)
    finally:
        await database.engine.dispose()


@cli.command("worker")
def worker_command(data_dir: DataDir = None) -> None:
    """Run a job-queue worker (it may run on another machine than the server)."""
    from app import jobs
    from app.runtime import init_database

    settings = load_settings(data_dir)
    url = database_url(settings)

    async def main() -> None:
        database = init_database(url, pool_size=4)
        jobs.configure(url)
        try:
            async with jobs.queue.open_async():
                await jobs.queue.run_worker_async(name="worker")
        finally:
            await database.engine.dispose()

    asyncio.run(main())


@cli.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(help="Email (the login).")],
    name: Annotated[str, typer.Option(help="Display name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    admin: Annotated[bool, typer.Option("--admin", help="Make an administrator.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create an account; the password is read from standard input."""
    from app.accounts.schemas import UserCreate
    from app.accounts.service import create_user as create

    if not password_stdin:
        fail(
            "give --password-stdin and pipe the password in (it never goes on the command line)", 2
        )
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        data = UserCreate(email=email, name=name, password=password, is_admin=admin)
    except ValidationError as exc:
        from app.forms import field_errors

        fail("; ".join(f"{k}: {v}" for k, v in field_errors(exc).items()), 2)
    settings = load_settings(data_dir)
    user = run_with_db(settings, lambda db: create(db, None, data))
    typer.echo(f"created user {user.email} (id {user.id}{', admin' if user.is_admin else ''})")


@token_cli.command("create")
def token_create(
    email: Annotated[str, typer.Option(help="Whose token.")],
    name: Annotated[str, typer.Option(help="A name to recognise it by.")] = "cli",
    data_dir: DataDir = None,
) -> None:
    """Create a personal API token and print it (only its hash is stored)."""
    from app.accounts.service import create_api_token, get_user_by_email

    async def work(db: AsyncSession) -> str:
        user = await get_user_by_email(db, email)
        _, raw = await create_api_token(db, user, name)
        return raw

    typer.echo(run_with_db(load_settings(data_dir), work))


@project_cli.command("create")
def project_create(
    slug: Annotated[str, typer.Argument(help="Short name used in links.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    lead: Annotated[str | None, typer.Option(help="Email of the first lead.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a project with a first lead (default: the first administrator)."""
    from app.projects.schemas import ProjectCreate

    try:
        data = ProjectCreate(slug=slug, name=name)
    except ValidationError:
        fail(f"invalid slug {slug!r}: use 2-63 lowercase letters, digits and hyphens", 2)
    settings = load_settings(data_dir)
    project = run_with_db(settings, lambda db: _create_project(db, data, lead))
    typer.echo(f"created project {project.slug}")


async def _create_project(db: AsyncSession, data: ProjectCreate, lead_email: str | None) -> Project:
    from sqlalchemy import select

    from app.accounts.service import get_user_by_email
    from app.errors import Invalid
    from app.models import User
    from app.projects.service import create_project

    if lead_email:
        return await create_project(db, None, data, lead=await get_user_by_email(db, lead_email))
    query = select(User).where(User.is_admin.is_(True), User.is_active.is_(True))
    admin = (await db.execute(query.order_by(User.id).limit(1))).scalar_one_or_none()
    if admin is None:
        raise Invalid("no administrator exists yet: give --lead EMAIL")
    return await create_project(db, None, data, lead=admin)


@project_cli.command("add-member")
def project_add_member(
    slug: Annotated[str, typer.Argument(help="The project.")],
    email: Annotated[str, typer.Option(help="The member's account.")],
    role: Annotated[
        list[str], typer.Option(help="lead, annotator, reviewer or exporter; repeatable.")
    ],
    data_dir: DataDir = None,
) -> None:
    """Give an account one or more roles in a project."""
    from app.models import Role

    try:
        roles = [Role(r) for r in role]
    except ValueError:
        fail(f"unknown role in {role}: use {', '.join(r.value for r in Role)}", 2)
    settings = load_settings(data_dir)
    run_with_db(settings, lambda db: _add_member(db, slug, email, roles))
    typer.echo(f"{email} now has {', '.join(role)} in {slug}")


async def _add_member(db: AsyncSession, slug: str, email: str, roles: list[Role]) -> None:
    from app.accounts.service import get_user_by_email
    from app.projects.service import add_roles, get_by_slug

    project = await get_by_slug(db, slug)
    user = await get_user_by_email(db, email)
    await add_roles(db, None, project, user, roles)


@cli.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="The file to import.", exists=True, dir_okay=False)],
    project: Annotated[str, typer.Option(help="The project's slug.")],
    format: Annotated[
        str | None, typer.Option("--format", help="Skip detection: " + ", ".join(FORMAT_NAMES))
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Name of the labels' source (default: the file name).")
    ] = None,
    add_new_labels: Annotated[
        bool, typer.Option(help="Add unknown labels to the codebook instead of refusing.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Import dialogues: everything is checked first; a file with any error imports nothing."""
    from app.imports.cli import run_import

    settings = load_settings(data_dir)
    ok = run_import(
        database_url(settings), path, project, format, source or path.name, add_new_labels
    )
    if not ok:
        raise typer.Exit(1)


@cli.command("export")
def export_command(
    project: Annotated[str, typer.Option(help="The project's slug.")],
    out: Annotated[Path, typer.Option(help="Folder to write into (one file per language).")],
    labels: Annotated[str, typer.Option(help="Whose labels: source:NAME.")],
    format: Annotated[str, typer.Option("--format", help="psy-insight")] = "psy-insight",
    data_dir: DataDir = None,
) -> None:
    """Export dialogues with a source's labels as Psy-Insight v7 files."""
    from app.exports.source import write_psy_insight
    from app.projects.service import get_by_slug

    if format != "psy-insight":
        fail(f"unknown format {format!r}: use psy-insight", 2)
    if not labels.startswith("source:") or not labels[7:]:
        fail("--labels must be source:NAME", 2)

    async def work(db: AsyncSession) -> list[tuple[Path, int]]:
        return await write_psy_insight(db, await get_by_slug(db, project), labels[7:], out)

    for written, count in run_with_db(load_settings(data_dir), work):
        typer.echo(f"wrote {count} dialogues to {written}")


@cli.command("agreement")
def agreement_command(
    project: Annotated[str, typer.Option(help="The project's slug.")],
    raters: Annotated[
        str, typer.Option(help="people, or all (people and every source).")
    ] = "people",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Inter-annotator agreement per label dimension."""
    import json

    from app.agreement.service import Filters, envelope, rater_keys, rater_names, recompute
    from app.models import AnnotationSource
    from app.projects.service import get_by_slug

    if raters not in ("people", "all"):
        fail("--raters must be people or all", 2)

    async def work(db: AsyncSession) -> dict[str, Any]:
        from sqlalchemy import select

        found = await get_by_slug(db, project)
        sources: tuple[str, ...] = ()
        if raters == "all":
            query = select(AnnotationSource.name).where(AnnotationSource.project_id == found.id)
            sources = tuple(await db.scalars(query))
        filters = Filters(sources=sources)
        result = await recompute(db, found, filters)
        return envelope(result, filters, await rater_names(db, rater_keys(result.dimensions)))

    result = run_with_db(load_settings(data_dir), work)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    rows: list[dict[str, Any]] = result["dimensions"]
    for row in rows:
        alpha = row.get("alpha")
        shown = (
            "no ratings"
            if not isinstance(alpha, dict)
            else (
                f"alpha {alpha['value']:.3f}"
                if alpha["value"] is not None
                else f"alpha undefined: {alpha['undefined_reason']}"
            )
        )
        typer.echo(f"{row['dimension']}: {shown}")


@cli.command()
def demo(data_dir: DataDir = None) -> None:
    """Load the demo project (creating the demo administrator if there is no account yet)."""
    settings = load_settings(data_dir)
    url = database_url(settings)
    migrate_to_head(url)
    project_id = run_with_db(settings, _demo, url)
    asyncio.run(_demo_dialogues(url, project_id))
    typer.echo("demo project loaded: /projects/demo")


async def _demo(db: AsyncSession) -> int:
    from sqlalchemy import select

    from app.demo import DEMO_ADMIN_EMAIL, has_users, load_demo
    from app.models import User

    if not await has_users(db):
        project_id = await _first_start(db)
        assert project_id is not None
        return project_id
    query = select(User).where(User.email == DEMO_ADMIN_EMAIL)
    admin = (await db.execute(query)).scalar_one_or_none()
    if admin is None:
        query = select(User).where(User.is_admin.is_(True)).order_by(User.id).limit(1)
        admin = (await db.execute(query)).scalar_one()
    return (await load_demo(db, admin)).id


def main() -> None:
    cli()
