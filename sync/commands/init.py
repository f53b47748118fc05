"""``init``: write the commented example configuration."""

from __future__ import annotations

import argparse
import os
from importlib.resources import files
from pathlib import Path

from sync import config
from sync.cli import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="where to write (default: the config path)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(handler=run)


def example() -> str:
    return files("sync").joinpath("templates/retailcrm-sync.toml").read_text(encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else config.resolve_path(args.config)
    if path.exists() and not args.force:
        raise CliError(f"{path} exists; use --force to overwrite", code=2)
    # Owner-only from the start: the file may later hold a literal api_key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(example())
    print(f"wrote {path}; set RETAILCRM_API_KEY (or api_key_file) and run `retailcrm-sync check`")
    return 0
