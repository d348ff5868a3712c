"""`python -m restore.bench denoise --data DIR` is `restore bench denoise --data DIR`."""
import typer

from restore.commands.bench_cmd import bench

typer.run(bench)
