"""The ``loopml`` console entry point: every command module registered on one Typer app."""

from __future__ import annotations

import sys

from loopml_cli import (  # noqa: F401 (commands)
    demo,
    deployments,
    operations,
    pipeline,
    server_stack,
    stack,
)
from loopml_cli.app import app


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
