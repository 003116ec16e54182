"""``qaflow serve`` and ``qaflow keys``: run the HTTP service; make and revoke API keys."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from qaflow.cli._common import DB_OPTION, fail_cleanly, open_engine
from qaflow.cli._main import main
from qaflow.cli._ops import outbox
from qaflow.errors import ValidationError

KEYS_OPTION = click.option(
    "--keys", "keys_path", default="qaflow-keys.json", show_default=True, help="The key store."
)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@main.command(short_help="Serve the HTTP/JSON API and QA pages.")
@DB_OPTION
@click.option("--directory", "directory_path", required=True, help="People and roles (JSON).")
@click.option("--keys", "keys_path", help="The API key store (see `qaflow keys add`).")
@click.option(
    "--insecure-local",
    is_flag=True,
    help="No key store: callers name themselves with X-QAFlow-Person; loopback only.",
)
@click.option(
    "--access",
    "access_path",
    help="Who sees which cases beyond the default rule (JSON: see_all_roles, grants).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to bind.")
@click.option("--port", type=int, default=8080, show_default=True, help="The port to bind.")
@fail_cleanly
def serve(
    db: str,
    directory_path: str,
    keys_path: str | None,
    insecure_local: bool,
    access_path: str | None,
    host: str,
    port: int,
) -> None:
    """Serve the HTTP/JSON API, /openapi.json and the QA pages (writes on callers' commands)."""
    import uvicorn

    from qaflow.directory import InMemoryDirectory
    from qaflow.service import CaseAccess, KeyStore, create_app
    from qaflow.store import open_store

    if keys_path is None and not insecure_local:
        raise ValidationError(
            field="--keys", value=None, expected="a key store file (or --insecure-local)"
        )
    if keys_path is not None and insecure_local:
        raise ValidationError(
            field="--insecure-local", value=True, expected="not given together with --keys"
        )
    if insecure_local and not _loopback(host):
        raise ValidationError(
            field="--host", value=host, expected="a loopback address with --insecure-local"
        )
    if not Path(directory_path).exists():
        raise ValidationError(
            field="--directory", value=directory_path, expected="an existing directory file"
        )
    directory = InMemoryDirectory.load_json(directory_path)
    keys = KeyStore.load(keys_path) if keys_path is not None else None
    access = CaseAccess.load_json(directory, access_path) if access_path is not None else None
    store = open_store(db, field="--db")  # a SQLite file (made if new) or a URL
    app = create_app(store, directory, keys=keys, insecure_local=insecure_local, access=access)
    click.echo(f"qaflow serving {db} on http://{host}:{port} (OpenAPI at /openapi.json)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        store.close()


@main.group(short_help="Make, list and revoke API keys.")
def keys() -> None:
    """Make, list and revoke the API keys `qaflow serve` accepts (stored hashed)."""


@keys.command("add", short_help="Make a key for a person (writes).")
@click.argument("person_id")
@KEYS_OPTION
@fail_cleanly
def keys_add(person_id: str, keys_path: str) -> None:
    """Make a key for PERSON_ID (writes the key store; prints the key once)."""
    from qaflow.service import KeyStore

    path = Path(keys_path)
    store = KeyStore.load(path) if path.exists() else KeyStore(path=path)
    entry, key = store.add(person_id)
    store.save()
    click.echo(f"key {entry.id} for {entry.person_id} (shown once, store it now):")
    click.echo(key)


@keys.command("list", short_help="List the stored keys.")
@KEYS_OPTION
@fail_cleanly
def keys_list(keys_path: str) -> None:
    """List the stored keys (ids and people, never the keys)."""
    from qaflow.service import KeyStore

    for entry in KeyStore.load(keys_path):
        state = "revoked" if entry.revoked else "live"
        click.echo(f"{entry.id}  {entry.person_id}  {entry.created_at}  {state}")


@keys.command("revoke", short_help="Revoke a key (writes).")
@click.argument("key_id")
@KEYS_OPTION
@fail_cleanly
def keys_revoke(key_id: str, keys_path: str) -> None:
    """Revoke a key (writes the key store)."""
    from qaflow.service import KeyStore

    store = KeyStore.load(keys_path)
    store.revoke(key_id)
    store.save()
    click.echo(f"revoked {key_id}")


@outbox.command("deliver", short_help="Post pending notifications to a webhook.")
@click.option("--url", required=True, help="The webhook that receives each notification.")
@click.option(
    "--secret-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A file holding the HMAC secret (at least 16 bytes).",
)
@click.option("--db", default=None, help="The SQLite database file (default: outbox's --db).")
@click.option("--watch", type=click.FloatRange(min=1), help="Keep delivering every N seconds.")
@click.pass_context
@fail_cleanly
def outbox_deliver(
    ctx: click.Context, url: str, secret_file: str, db: str | None, watch: float | None
) -> None:
    """POST pending notifications to URL, signed; mark each sent on a 2xx (writes)."""
    import time

    from qaflow.service import WebhookDeliverer

    db = db or (ctx.parent.params["db"] if ctx.parent else "qaflow.db")
    secret = Path(secret_file).read_bytes().strip()
    with open_engine(db, write=True) as engine:
        deliverer = WebhookDeliverer(engine.store, url, secret)
        try:
            while True:
                report = deliverer.deliver_due()
                click.echo(
                    f"delivered {len(report.delivered)}, retrying {len(report.retrying)}, "
                    f"gave up {len(report.gave_up)}"
                )
                if watch is None:
                    break
                time.sleep(watch)
        finally:
            deliverer.close()
