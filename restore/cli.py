"""The `restore` command: assembles the commands, each in its own module under restore/commands."""
import logging
import sys

import typer
from pydantic import ValidationError

from restore.commands.batch_cmd import batch
from restore.commands.bench_cmd import bench, expand_list_flags
from restore.commands.models_cmd import models
from restore.commands.restore_files import colorize, denoise, dewatermark
from restore.commands.service_cmd import serve, settings_table, worker
from restore.commands.train_cmd import export, quantize, synth_watermarks, train
from restore.settings import describe
from restore.tasks import TASKS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Restore photos with trained autoencoders.")
for command in (denoise, dewatermark, colorize):
    task = TASKS[command.__name__]
    # \b keeps the example on its own line in the help text.
    app.command(help=f"{task.summary}\n\n\b\nExample:\n  {task.example}")(command)
app.command()(batch)
app.command()(models)
app.command()(bench)
app.command()(train)
app.command()(export)
app.command()(quantize)
app.command(name="synth-watermarks")(synth_watermarks)
app.command(epilog=settings_table())(serve)
app.command(epilog=settings_table())(worker)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:]
    try:
        app(expand_list_flags(args) if args[:1] == ["bench"] else args)
    except ValidationError as e:
        if e.title not in ("Settings", "ServiceSettings"):
            raise
        # A bad RESTORE_* variable is the user's to fix, not a traceback.
        typer.echo(f"error: bad setting: {describe(e)}", err=True)
        raise SystemExit(1) from None
