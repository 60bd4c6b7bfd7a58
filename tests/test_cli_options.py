"""One options layer: every verb that runs a model takes the same workload flags, and a
command imports only its own verb module."""

from __future__ import annotations

import subprocess
import sys

import typer

from imcsim.cli import COMMANDS, app, load_verbs
from imcsim.cli.options import WORKLOAD_FLAGS

WORKLOAD_VERBS = ("map", "export-layers", "compare", "simulate", "accuracy", "accuracy-sweep",
                  "accuracy-study", "train", "rank-search", "sweep")
OUTSIDE = ("--model", "--model-arg", "--weights", "--input-shape", "--input-dtype", "--data",
           "--metric")


def _group():
    load_verbs([])
    return typer.main.get_command(app)


def test_every_workload_verb_takes_the_same_flags() -> None:
    group = _group()
    assert set(OUTSIDE) <= set(WORKLOAD_FLAGS)
    for verb in WORKLOAD_VERBS:
        flags = {opt for param in group.commands[verb].params for opt in param.opts}
        missing = [f for f in WORKLOAD_FLAGS if f not in flags]
        assert not missing, f"{verb} lacks {missing}"
        model_arg = next(p for p in group.commands[verb].params if "--model-arg" in p.opts)
        assert model_arg.multiple, verb


def test_the_command_table_names_the_module_of_every_command() -> None:
    group = _group()
    registered = {c.name: c.callback.__module__.rpartition(".")[2] for c in app.registered_commands}
    assert registered == COMMANDS
    assert set(group.commands) == set(COMMANDS)


def test_a_command_imports_its_own_verb_module_only() -> None:
    code = ("import sys\nfrom imcsim.cli import load_verbs\nload_verbs(['map', '--help'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('imcsim.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)  # noqa: S307 - a list of module names printed above
    verbs = [m for m in loaded if m.rpartition(".")[2] in COMMANDS.values()]
    assert verbs == ["imcsim.cli.map_cmd"] and "imcsim.cli.options" in loaded
