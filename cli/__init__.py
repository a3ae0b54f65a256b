"""ThoughtScope's command line, one package: `run`, `strategies`, `presets`, `docs` (cli.run), `runs ...`
(cli.runs), `eval`, `sweep` and `pick-example` (cli.evaluate), `train policy|prm` and `eval-prm` (cli.train).

Every command reports bad input as one red ``error: ...`` line and exit code 1
(`cli.common.clear_errors`).  `python cli.py ...` and `python -m cli ...` both start `app`.
"""

from __future__ import annotations

import typer

from cli import evaluate, run, train
from cli.common import clear_errors
from cli.runs import runs_app

app = typer.Typer(help="ThoughtScope: grow, inspect and replay LLM reasoning trees.", no_args_is_help=True)
app.command("run")(clear_errors(run.run))
app.command("strategies")(run.strategies)
app.command("presets")(run.presets)
app.command("docs")(run.docs)
app.add_typer(runs_app, name="runs", help="List, show, rename, tag, delete, export and import saved runs.")
app.command("eval")(clear_errors(evaluate.eval_command))
app.command("sweep")(clear_errors(evaluate.sweep_command))
app.command("pick-example")(clear_errors(evaluate.pick_example_command))
app.add_typer(train.train_app, name="train")
app.command("eval-prm")(clear_errors(train.eval_prm_command))

__all__ = ["app"]
