"""The ``qaflow`` command group that every command module attaches to."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qaflow")
def main() -> None:
    """Council QA and escalation procedures as durable state machines."""
