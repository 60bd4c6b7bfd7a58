"""The ``imcsim`` command.  Every error is one line on stderr and exit code 2."""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.25 vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer on plain click
    from click.exceptions import ClickException
    from click.exceptions import NoArgsIsHelp as NoArgsIsHelpError

from imcsim.errors import ImcsimError

app = typer.Typer(
    name="imcsim",
    help="Map PyTorch models onto in-memory-computing crossbar arrays: cycles, energy, "
    "area, utilization and accuracy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Verbs register themselves on ``app`` when their module is imported, in the order
# ``imcsim --help`` lists them.
# isort: off
from imcsim.cli import map_cmd, export_cmd, draw_cmd, compare_cmd, simulate_cmd  # noqa: E402,F401
from imcsim.cli import accuracy_cmd, train_cmd  # noqa: E402,F401
from imcsim.cli import sweep_cmd, info  # noqa: E402,F401
# isort: on


def fail(message: str) -> None:
    """Print ``imcsim: error: message`` on one line and exit with code 2."""
    print(f"imcsim: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    try:
        app(args=argv, standalone_mode=False)
    except NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else "")
        raise SystemExit(0) from None
    except ClickException as exc:
        fail(exc.format_message())
    except typer.Abort:
        fail("aborted")
    except ImcsimError as exc:
        fail(str(exc))
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        fail(f"{exc.strerror}: {exc.filename}")
