"""``python -m qaflow.cli``."""

from qaflow.cli import main

main()
