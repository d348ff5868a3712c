"""The `restore` command: assembles the commands, each in its own module under restore/commands."""
import logging

import typer

from restore.commands.batch_cmd import batch
from restore.commands.bench_cmd import bench
from restore.commands.models_cmd import models
from restore.commands.restore_files import colorize, denoise, dewatermark
from restore.commands.service_cmd import serve, worker
from restore.commands.train_cmd import export, synth_watermarks, train

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="Restore photos with trained autoencoders.")
app.command()(denoise)
app.command()(dewatermark)
app.command()(colorize)
app.command()(batch)
app.command()(models)
app.command(context_settings={"allow_extra_args": True})(bench)  # --sigma 15 25 50
app.command()(train)
app.command()(export)
app.command(name="synth-watermarks")(synth_watermarks)
app.command()(serve)
app.command()(worker)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
