"""The ``imcsim`` command: one exit path for every verb.

* success → exit 0;
* bad input (a value, a file, a path) → one line ``imcsim: error: …`` on stderr, exit 2;
* Ctrl-C → one line ``imcsim: interrupted …`` (saying what was saved and how to
  resume), exit 130; child processes are stopped by the executors on the way out;
* anything else is a bug: one line ``imcsim: internal error: …``, exit 1
  (``IMCSIM_TRACEBACK=1`` shows the traceback).
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

try:  # typer >= 0.25 vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer on plain click
    from click.exceptions import ClickException
    from click.exceptions import NoArgsIsHelp as NoArgsIsHelpError

from imcsim.cli.common import interrupt_hint
from imcsim.errors import ImcsimError

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "VERBS", "app", "fail", "load_verbs",
           "main"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
_MAX_MESSAGE = 1000

app = typer.Typer(
    name="imcsim",
    help="Map PyTorch models onto in-memory-computing crossbar arrays: cycles, energy, "
    "area, utilization and accuracy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.callback()
def _group() -> None:
    """Keeps ``imcsim`` a group of commands when only one verb module is loaded."""


VERBS = ("map_cmd", "export_cmd", "draw_cmd", "compare_cmd", "simulate_cmd", "accuracy_cmd",
         "train_cmd", "rank_search_cmd", "explore_cmd", "sweep_cmd", "verify_cmd", "info")
"""Verb modules, in the order ``imcsim --help`` lists them; each registers itself on
``app`` when imported.  ``main`` imports them inside its error handling (they pull in
torch, seconds on a busy machine), so that Ctrl-C while they load is a clean exit too."""


COMMANDS = {
    "map": "map_cmd", "export-layers": "export_cmd", "draw": "draw_cmd",
    "compare": "compare_cmd", "simulate": "simulate_cmd", "accuracy": "accuracy_cmd",
    "accuracy-sweep": "accuracy_cmd", "accuracy-study": "accuracy_cmd", "train": "train_cmd",
    "rank-search": "rank_search_cmd", "rank-search-study": "rank_search_cmd",
    "factorization-errors": "rank_search_cmd", "sweep": "sweep_cmd", "run": "sweep_cmd",
    "plot": "sweep_cmd", "list": "info", "explore": "explore_cmd", "verify": "verify_cmd",
}
"""Which verb module registers each command: a command imports its own module only (a
test checks this table against what the modules register)."""


def load_verbs(argv: list[str] | None = None) -> typer.Typer:
    """Import the verb module of the command in ``argv`` (every module for ``--help``, no
    command or an unknown one, so that help and errors list them all); return ``app``."""
    words = sys.argv[1:] if argv is None else argv
    command = next((w for w in words if not w.startswith("-")), None)
    names = [COMMANDS[command]] if command in COMMANDS else VERBS
    for name in names:
        importlib.import_module(f"imcsim.cli.{name}")
    return app

_BAD_INPUT = (ImcsimError, ValueError, ArithmeticError, RecursionError, MemoryError,
              UnicodeError)
"""Exceptions that mean the input cannot be used (library code raises ``ImcsimError``;
the others come from numbers, encodings and sizes that slipped past a check)."""


def _say(prefix: str, message: str) -> None:
    text = " ".join(str(message).split())
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    print(f"imcsim: {prefix}{text}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    """Print ``imcsim: error: message`` on one line and exit with code 2."""
    _say("error: ", message)
    raise SystemExit(EXIT_BAD_INPUT)


def _interrupted() -> None:
    hint = interrupt_hint()
    _say("interrupted", f"; {hint}" if hint else "")
    raise SystemExit(EXIT_INTERRUPTED)


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ImcsimError):
        return str(exc)
    text = str(exc) or "(no message)"
    return f"{type(exc).__name__}: {text}"


def main(argv: list[str] | None = None) -> None:
    """Console entry point; every outcome is one of the exits in the module docstring."""
    try:
        code = load_verbs(argv)(args=argv, standalone_mode=False)
    except NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else "")
        raise SystemExit(0) from None
    except ClickException as exc:
        fail(exc.format_message())
    except typer.Abort:  # end of input at a prompt
        fail("aborted")
    except KeyboardInterrupt:  # raised outside typer's own handler
        _interrupted()
    except OSError as exc:
        fail(_os_error(exc))
    except _BAD_INPUT as exc:
        fail(_describe(exc))
    except Exception as exc:
        if os.environ.get("IMCSIM_TRACEBACK"):
            raise
        _say("internal error: ", f"{_describe(exc)} (please report it; IMCSIM_TRACEBACK=1 "
             "shows the traceback)")
        raise SystemExit(1) from None
    if code == EXIT_INTERRUPTED:  # typer turns KeyboardInterrupt into exit code 130
        _interrupted()
    if isinstance(code, int) and code != 0:
        raise SystemExit(code)
