"""``keys``: the Fernet key of a tenants directory, and API keys encrypted with it.

``keys generate --key-file PATH`` writes a new key readable by its owner only (it refuses to
overwrite one: tokens made with it would no longer decrypt). ``keys encrypt`` reads an API key
from stdin (never from the command line, where ``ps`` and shell history would show it) and
prints the token to store in the directory's ``api_key_encrypted`` column.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from sync import config
from sync.cli import CliError, add_global_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    generate = sub.add_parser("generate", help="write a new Fernet key file (mode 0600)")
    add_global_options(generate)
    generate.add_argument("--key-file", required=True, metavar="PATH", type=Path)
    generate.set_defaults(handler=run_generate)
    encrypt = sub.add_parser(
        "encrypt", help="read an API key on stdin, print its api_key_encrypted token"
    )
    add_global_options(encrypt)
    encrypt.add_argument(
        "--key-file",
        metavar="PATH",
        type=Path,
        help="the Fernet key (default: [tenants_directory] key_file of the config)",
    )
    encrypt.set_defaults(handler=run_encrypt)


def run_generate(args: argparse.Namespace) -> int:
    path: Path = args.key_file
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(f"{path} exists; tokens made with it would no longer decrypt", 2) from None
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}", 1) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(Fernet.generate_key() + b"\n")
    print(f"{path}: new key written (owner-only); set [tenants_directory] key_file to it")
    return 0


def _key(args: argparse.Namespace) -> bytes:
    path: Path | None = args.key_file
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip().encode("ascii")
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read {path}: {exc}", 2) from None
    settings = config.load(config.resolve_path(getattr(args, "config", None)))
    if settings.directory is None or settings.directory.key is None:
        raise CliError("no --key-file and no [tenants_directory] key_file in the config", 2)
    return settings.directory.key.reveal().encode("ascii")


def run_encrypt(args: argparse.Namespace) -> int:
    try:
        fernet = Fernet(_key(args))
    except ValueError:
        raise CliError("the key file does not hold a Fernet key (see `keys generate`)", 2) from None
    if sys.stdin.isatty():
        api_key = getpass.getpass("API key (not echoed): ").strip()
    else:
        api_key = sys.stdin.readline().strip()
    if not api_key:
        raise CliError("no API key on stdin", 2)
    print(fernet.encrypt(api_key.encode()).decode())
    return 0
