"""The `chorus` command: run the API and workers, migrate, rebuild, verify, import, mint
tokens."""

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from shared.jwt_secret import DEV_SECRET_FILE, InsecureSecret, secret_problem
from shared.settings import Settings, get_settings

app = typer.Typer(help="Chorus: an event-sourced comment backend.", no_args_is_help=True)
DEV_DATA_DIR = ".chorus"
DataDir = Annotated[str, typer.Option(help="Where `chorus dev` keeps its files and its key")]


def _refuse(command: str, problem: str, *, what: str = "start") -> NoReturn:
    typer.echo(f"chorus {command}: refusing to {what}: {problem}", err=True)
    raise typer.Exit(2)


def _settings_with_secret(command: str) -> Settings:
    """The settings, if they are valid and their JWT secret may sign tokens; otherwise say
    why and exit."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        _refuse(command, _setting_problems(exc))
    problem = secret_problem(settings.jwt_secret)
    if problem is not None:
        _refuse(command, problem)
    return settings


def _setting_problems(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        name = "CHORUS_" + "_".join(str(part) for part in error["loc"]).upper()
        problems.append(message if message.startswith(name) else f"{name}: {message}")
    return "; ".join(problems)


@app.command()
def migrate() -> None:
    """Apply database migrations to CHORUS_DATABASE_URL."""
    from shared.migrate import upgrade

    upgrade(get_settings().database_url)
    typer.echo("database is up to date")


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Number of API processes")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn, configured by CHORUS_* environment variables."""
    import uvicorn

    from shared.logging_setup import configure_logging

    settings = _settings_with_secret("api")  # a clear refusal, before uvicorn's own output
    configure_logging()  # JSON from the supervising process too, not uvicorn's own format
    uvicorn.run(
        "services.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        access_log=False,
        log_config=None,
        # Live streams never end by themselves: past this they are cut, and their readers
        # reconnect and are replayed from the log.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    data_dir: DataDir = DEV_DATA_DIR,
) -> None:
    """Run everything on this machine: SQLite, an embedded Redis, the API, a worker."""
    from services.devserver import run_dev

    try:
        code = run_dev(port, Path(data_dir))
    except InsecureSecret as exc:
        _refuse("dev", str(exc))
    raise typer.Exit(code)


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Drain what is due, then exit")] = False,
) -> None:
    """Run an RQ worker for all Chorus queues (with RQ's scheduler for periodic jobs)."""
    from services.worker.main import run_worker

    run_worker(_settings_with_secret("worker"), burst=burst)


@app.command("dead-letters")
def dead_letters(
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 50,
) -> None:
    """List events a projector could not apply, with their errors."""
    from rich.console import Console
    from rich.table import Table

    from services.worker.dead_letters import list_dead_letters
    from shared.db import create_db_engine

    engine = create_db_engine(get_settings().database_url)
    letters = list_dead_letters(engine, limit)
    engine.dispose()
    table = Table("failed at", "projection", "thread", "version", "event", "error")
    for letter in letters:
        table.add_row(
            letter.failed_at.isoformat(timespec="seconds"),
            letter.projection,
            letter.stream_id,
            str(letter.version),
            letter.event_type,
            letter.error,
        )
    Console().print(table if letters else "no dead letters")


@app.command()
def rebuild(
    projection: Annotated[
        str, typer.Option(help="threads or notifications (never re-sends email)")
    ] = "threads",
) -> None:
    """Replay the log into fresh projection tables and swap them in, with a progress bar."""
    from rich.progress import Progress

    from services.worker.rebuild import rebuild_notifications, rebuild_threads
    from shared.db import create_db_engine
    from shared.store import EventStore

    rebuilders = {"threads": rebuild_threads, "notifications": rebuild_notifications}
    if projection not in rebuilders:
        raise typer.BadParameter(f"unknown projection {projection!r}; known: {list(rebuilders)}")
    engine = create_db_engine(get_settings().database_url)
    with Progress() as bar:
        task = bar.add_task(f"rebuilding {projection}", total=None)
        result = rebuilders[projection](
            engine,
            EventStore(engine),
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    engine.dispose()
    typer.echo(
        f"rebuilt {projection}: {result.events} events in {result.threads} threads"
        f" ({result.dead_lettered} dead-lettered)"
    )


@app.command()
def verify(
    limit: Annotated[int, typer.Option(help="How many differences to list")] = 50,
) -> None:
    """Replay the log and report every write-side or projection row that disagrees with it.

    Exits 1 if any does, 0 otherwise. Projections are compared as far as they have folded.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from services.worker.verify import verify as run_verify
    from shared.db import create_db_engine

    console = Console()
    engine = create_db_engine(get_settings().database_url)
    with console.status("replaying the log…"):
        report = run_verify(engine, keep=limit)
    engine.dispose()
    checked = f"{report.threads:,} threads, {report.users:,} user streams, {report.events:,} events"
    if report.unreadable_events:
        checked += f" ({report.unreadable_events:,} unreadable: see `chorus dead-letters`)"
    if report.ok:
        console.print(f"[green]every row agrees with the log[/green]: {checked}")
        return
    total = report.total_differences
    rows = "1 row disagrees" if total == 1 else f"{total:,} rows disagree"
    console.print(f"[red]{rows} with the log[/red]: {checked}")
    table = Table("table", "key", "problem", "column", "found", "expected")
    for difference in report.differences:
        cells = (difference.table, difference.key, difference.problem, difference.column)
        # Text, not markup: keys and values are data, and may hold "[...]".
        table.add_row(
            *(Text(cell or "") for cell in (*cells, difference.found, difference.expected))
        )
    console.print(table)
    if total > limit:
        console.print(f"… and {total - limit:,} more")
    raise typer.Exit(1)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The export file (Isso: its SQLite database)")],
    format_name: Annotated[str, typer.Option("--format", help="disqus, wordpress, isso or chorus")],
    dry_run: Annotated[
        bool, typer.Option(help="Read, check and count everything; append nothing")
    ] = False,
    fold: Annotated[
        str,
        typer.Option(
            help="Who folds the imported threads: `workers` (nudged, as for any write),"
            " `here` (this process, before the next batch) or `none` (the workers' sweep)"
        ),
    ] = "workers",
    batch: Annotated[int, typer.Option(help="Comments per transaction, about")] = 5000,
) -> None:
    """Import comments from another tool's export (or a `chorus export`), with a progress
    bar, then a report. Run it again: what is already there is not appended twice.

    A malformed file is refused whole, naming the place, before anything is appended."""
    import os

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from services.worker.imports.engine import Importer
    from services.worker.imports.folds import AfterBatch, FoldHere, NudgeFolds, no_folds
    from services.worker.imports.formats import UnknownFormat, close_source, open_source
    from services.worker.imports.model import MalformedFile
    from services.worker.imports.report_text import report_lines
    from shared.db import create_db_engine
    from shared.store import EventStore

    if fold not in ("workers", "here", "none"):
        raise typer.BadParameter("--fold is workers, here or none")
    if not file.is_file():
        _refuse("import", f"{file} is not a file", what="import")
    try:
        source = open_source(format_name, file)
    except UnknownFormat as exc:
        _refuse("import", str(exc), what="import")
    settings = get_settings()
    engine = create_db_engine(settings.database_url, pool_size=2)
    after: AfterBatch = no_folds
    redis = None
    if not dry_run and fold == "workers":
        from redis import Redis

        redis = Redis.from_url(settings.redis_url)
        after = NudgeFolds(redis)
    elif not dry_run and fold == "here":
        after = FoldHere(engine, EventStore(engine))
    console = Console(stderr=True)
    columns = (*Progress.get_default_columns()[:2], BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("reading" if dry_run else "importing", total=None)
            importer = Importer(
                engine,
                source,
                dry_run=dry_run,
                batch_comments=batch,
                after_batch=after,
                render_processes=os.cpu_count() or 1,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
            report = importer.run()
    except MalformedFile as exc:
        typer.echo(f"chorus import: {file}: {exc.where}: {exc.problem}; nothing imported", err=True)
        raise typer.Exit(1) from None
    finally:
        close_source(source)
        engine.dispose()
        if redis is not None:
            redis.close()
    for line in report_lines(report):
        typer.echo(line)


@app.command()
def export(
    thread: Annotated[str | None, typer.Option(help="Only this thread")] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write here (replaced whole when done); else stdout")
    ] = None,
) -> None:
    """Export threads and their comments in Chorus's own format (JSON lines).

    `chorus import FILE --format chorus` reads it back: same pages, counts and likes.
    """
    from services.worker.export import ThreadNotFound
    from services.worker.export import export as run_export
    from shared.db import create_db_engine

    engine = create_db_engine(get_settings().database_url)
    try:
        if output is None:
            result = run_export(engine, sys.stdout.buffer, thread_id=thread)
            sys.stdout.buffer.flush()
        else:
            # Written beside it, then renamed: a cut-short export never takes the name.
            partial = output.with_name(output.name + ".partial")
            try:
                with partial.open("wb") as out:
                    result = run_export(engine, out, thread_id=thread)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            partial.replace(output)
    except ThreadNotFound as exc:
        _refuse("export", str(exc), what="export")
    finally:
        engine.dispose()
    where = "" if output is None else f" to {output}"
    typer.echo(f"exported {result.threads} threads, {result.comments} comments{where}", err=True)
    if result.unfolded_threads:
        typer.echo(
            f"{result.unfolded_threads} threads had events not folded yet: exported as their"
            " pages showed them (a running worker folds them; export again for the rest)",
            err=True,
        )


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="User id")],
    name: Annotated[str, typer.Option(help="Display name")],
    email: Annotated[str | None, typer.Option(help="Email address")] = None,
    role: Annotated[list[str] | None, typer.Option(help="moderator or admin; repeatable")] = None,
    days: Annotated[int, typer.Option(help="Days until the token expires")] = 30,
    data_dir: DataDir = DEV_DATA_DIR,
) -> None:
    """Print a token signed with CHORUS_JWT_SECRET, else with `chorus dev`'s key."""
    from datetime import timedelta

    from shared.tokens import mint_token

    secret = get_settings().jwt_secret
    dev_key = Path(data_dir) / DEV_SECRET_FILE
    if not secret and dev_key.is_file():
        secret = dev_key.read_text().strip()
        typer.echo(
            f"chorus token: CHORUS_JWT_SECRET is not set; signing with the key of"
            f" `chorus dev` in {dev_key} (good for that dev server only)",
            err=True,
        )
    problem = secret_problem(secret)
    if problem is not None:
        where = "" if secret else f"; nor is there a `chorus dev` key in {dev_key}"
        _refuse("token", problem + where, what="sign a token")
    typer.echo(
        mint_token(secret, sub=sub, name=name, email=email, roles=role, ttl=timedelta(days=days))
    )


if __name__ == "__main__":
    app()
