"""``demo``: the product end to end with nothing to configure (see sync/demo.py)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from sync.cli import CliError
from sync.commands.progress import upload_bar
from sync.demo import render, run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calls", type=int, default=300, help="how many calls to simulate (default 300)"
    )
    parser.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    parser.add_argument(
        "--dir", metavar="PATH", help="an empty folder to use (default: a new temporary one)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.calls <= 20_000:
        raise CliError("--calls must be between 1 and 20000", 2)
    if args.dir:
        folder = Path(args.dir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        if any(folder.iterdir()):
            raise CliError(f"{folder} is not empty; give an empty or new folder", 2)
    else:
        folder = Path(tempfile.mkdtemp(prefix="retailcrm-sync-demo-"))
    result = run_demo(
        folder, calls=args.calls, seed=args.seed, progress=lambda: upload_bar("upload")
    )
    print(render(result))
    return 0
