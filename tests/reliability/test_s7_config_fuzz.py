"""Scenario 7b: no configuration file makes the CLI end in a traceback.

Hypothesis writes configuration files and runs ``sync.cli.main(["--config", path, "once"])``
(and ``check``) in-process:

* TOML-ish text: random text over TOML's punctuation, a valid config with random edits, and
  bytes that are not UTF-8 — ``once`` exits 2 with ``file: invalid TOML: …`` (or ``file: not
  UTF-8 text``);
* valid TOML whose structure is wrong: a complete, valid config where values are replaced by
  other types, odd strings and numbers, tables by values, keys dropped and unknown keys added —
  ``once`` exits 2 and every line reads ``file: key: reason``; ``check`` exits 1 and prints the
  same problems as ``✗ configuration: file: key: reason``.

No example may raise, print a traceback, or echo the literal API key the file holds. The
shapes the fuzz found crashing the loader once have a test each at the end of this file.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import config
from sync.cli import main
from tests.reliability.common import SIZE, figure, run_cli, sized

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SECRET = "fuzz-literal-key-7d1e0c9b5a2f4e68"
EXAMPLES = sized(1500, 250)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SIZE == "ci",  # CI: the same examples every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
URL_KEYS = ("url", "logo_url", "make_call_url", "change_user_status_url", "recording_url")

# -- a valid configuration and a TOML writer -------------------------------------------------------


def base_config(folder: Path) -> dict[str, Any]:
    return {
        "database": {"url": f"sqlite:///{folder}/own.db"},
        "source": {
            "url": f"sqlite:///{folder}/cdr.db",
            "table": "cdr",
            "timezone": "Europe/Minsk",
            "settle_seconds": 120,
            "orphan_settle_seconds": 1800,
            "lookback_hours": 24.0,
            "tenant_column": "accountcode",
            "start_date": "2026-01-01 00:00:00",
            "page_size": 5000,
            "columns": {"linkedid": "linkedid", "start": "start"},
            "values": {"answered": ["ANSWERED"], "in": ["in"]},
        },
        "pbx": {
            "country": "BY",
            "extension_pattern": r"^\d{2,5}$",
            "trunk_channel_pattern": "^PJSIP/beltelecom",
            "responsible": "first",
            "dial_prefixes": ["9"],
            "external_id_prefix": "pbx-",
            "recording_url": "https://pbx.example.com/rec/{date}/{recordingfile}",
        },
        "sync": {
            "batch_size": 50,
            "max_in_flight": 4,
            "max_attempts": 10,
            "lease_seconds": 60,
            "upload_budget_seconds": 25.0,
            "retry_base_seconds": 30,
            "retry_max_seconds": 3600,
            "connect_timeout": 5.0,
            "read_timeout": 20.0,
        },
        "daemon": {
            "interval": 30.0,
            "customers_interval": 300.0,
            "stop_timeout": 30.0,
            "keep_days": 30,
            "jitter": 3.0,
        },
        "logging": {
            "dir": f"{folder}/logs",
            "level": "INFO",
            "rotation": "50 MB",
            "retention": "30 days",
        },
        "tenants": [
            {
                "name": "shop",
                "url": "https://shop.retailcrm.ru",
                "api_key": SECRET,
                "match": "shop",
                "timezone": "Europe/Minsk",
                "site": "shop",
                "logo_url": "https://pbx.example.com/logo.svg",
                "rate_limit": 40.0,
                "create_customers": False,
                "extensions": {"101": 7, "102": 8},
                "external_phones": {"375172000000": "shop"},
            }
        ],
    }


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(type(value))


def to_toml(data: dict[str, Any]) -> str:
    """Scalars first, then one ``[table]`` per table and ``[[name]]`` per array of tables."""
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in data.items() if not _section(v)]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{toml_string(key)}]")
            lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()]
        elif _section(value):
            for item in value:
                lines.append(f"[[{toml_string(key)}]]")
                lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _section(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )


# -- running the CLI ------------------------------------------------------------------------------


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Relative paths a config names land in the scratch folder, never in the checkout."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def cli(path: Path, *command: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(path), *command])
    return code, out.getvalue() + err.getvalue()


def loads(path: Path) -> bool:
    """True when the file is a valid configuration (then the CLI would really run)."""
    try:
        config.load(path, {})
    except config.ConfigError:
        return False
    return True


def problem_lines(output: str, path: Path) -> list[str]:
    prefix = f"retailcrm-sync: {path}: "
    lines = output.rstrip("\n").split("\n")
    assert lines, "no reason given"
    assert all(line.startswith(prefix) for line in lines), output
    return [line[len(prefix) :] for line in lines]


# -- strategies ---------------------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
KEYS = st.text(st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20)
"""Key names without line breaks or control characters: those are printed raw today (see
``test_a_key_name_with_a_line_break_stays_on_one_line``)."""
NASTY = st.sampled_from(
    [
        "",
        " ",
        "\t\n",
        "x" * 300,
        "../../etc/passwd",
        "Europe/Nowhere",
        "UTC",
        "ftp://example.com",
        "https://",
        "https://shop.retailcrm.ru/api/v5",
        "http://x/{nope}",
        "{",
        "((",
        "[a-",
        "sqlite://",
        "mysql://root@127.0.0.1:1/db",
        "oracle://x/y",
        "2026-02-30",
        "99999999999",
        "-1",
        "nan",
        "ПРИВЕТ",
        "\u202e\u0000",
        "first",
        "50 MB",
        "0 days",
    ]
)
SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    TEXT,
    NASTY,
    st.datetimes(),
    st.dates(),
    st.times(),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(KEYS, SCALARS, max_size=3),
    st.lists(st.dictionaries(KEYS, SCALARS, max_size=2), min_size=1, max_size=2),
)


def leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index)
            yield from leaves(value, (*path, index))


def parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def tables(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Tables where an unknown key is an error (extension maps take any key)."""
    if isinstance(node, dict) and (not path or path[-1] not in ("extensions", "external_phones")):
        yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from tables(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from tables(value, (*path, index))


@st.composite
def broken_configs(draw: st.DrawFn, folder: Path) -> tuple[dict[str, Any], list[str]]:
    """A valid config with 1–5 random changes, then one that surely makes it invalid."""
    data = base_config(folder)
    done = []
    for _ in range(draw(st.integers(1, 5))):
        paths = [p for p in leaves(data) if p[:2] != ("logging", "dir")]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        holder = parent(data, path)
        action = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if action == "replace":
            holder[path[-1]] = draw(VALUES)
        elif action == "drop":
            del holder[path[-1]]
        elif isinstance(holder, dict):
            holder[draw(KEYS)] = draw(VALUES)
        done.append(f"{action} {'.'.join(map(str, path))}")
    spots = list(tables(data))
    if spots:
        where = draw(st.sampled_from(spots))
        target = data
        for part in where:
            target = target[part]
        target[f"x_unknown_{draw(st.integers(0, 99))}"] = draw(SCALARS)
        done.append(f"unknown key in {'.'.join(map(str, where)) or 'root'}")
    return data, done


TOML_CHARS = st.sampled_from([*"[]=.\"'#\n \t,{}_-+:0123456789abcdeflnrstu\\", "tenants"])


@st.composite
def tomlish_texts(draw: st.DrawFn, folder: Path) -> bytes:
    kind = draw(st.sampled_from(["chars", "edited", "bytes"]))
    if kind == "chars":
        return "".join(draw(st.lists(TOML_CHARS, max_size=200))).encode()
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=200))
    text = list(to_toml(base_config(folder)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text) - 1))
        op = draw(st.sampled_from(["delete", "insert", "replace"]))
        ch = draw(TOML_CHARS)
        if op == "delete":
            del text[at]
        elif op == "insert":
            text.insert(at, ch)
        else:
            text[at] = ch
    return "".join(text).encode("utf-8", "surrogatepass")


# -- the tests ----------------------------------------------------------------------------------


def test_the_base_config_is_valid(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("fuzz-base")
    path = folder / "c.toml"
    path.write_text(to_toml(base_config(folder)), encoding="utf-8")
    path.chmod(0o600)
    config.load(path, {})


def test_fuzzed_toml_text_gives_exit_2_with_a_reason(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("fuzz-text")
    path = folder / "c.toml"
    seen = {"invalid TOML": 0, "not UTF-8": 0, "key: reason": 0, "valid": 0}

    @FUZZ
    @given(raw=tomlish_texts(folder))
    def run(raw: bytes) -> None:
        path.write_bytes(raw)
        path.chmod(0o600)
        with inside(folder):
            if loads(path):
                seen["valid"] += 1
                return
            code, output = cli(path, "once")
        assert "Traceback" not in output and SECRET not in output, output
        assert code == 2, output
        lines = problem_lines(output, path)
        if lines[0].startswith("invalid TOML: "):
            seen["invalid TOML"] += 1
            assert len(lines) == 1
        elif lines[0] == "not UTF-8 text":
            seen["not UTF-8"] += 1
        else:
            seen["key: reason"] += 1
            assert all(re.match(r"^.*: \S", line) for line in lines), output

    run()
    figure("7 config fuzz (TOML-ish text)", examples=EXAMPLES, **seen)
    assert seen["invalid TOML"] and seen["key: reason"]


def test_fuzzed_config_structures_give_exit_2_with_file_key_reason(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("fuzz-structure")
    path = folder / "c.toml"
    seen = {"examples": 0, "problems": 0}

    @FUZZ
    @given(case=broken_configs(folder))
    def run(case: tuple[dict[str, Any], list[str]]) -> None:
        data, _changes = case
        path.write_text(to_toml(data), encoding="utf-8")
        path.chmod(0o600)
        with inside(folder):
            code, output = cli(path, "once")
            check_code, check_output = cli(path, "check")
        for text in (output, check_output):
            assert "Traceback" not in text and SECRET not in text, text
        assert code == 2, output
        lines = problem_lines(output, path)
        assert all(re.match(r"^.*: \S", line) for line in lines), output
        assert check_code == 1, check_output
        for line in lines:
            assert f"✗ configuration: {path}: {line}" in check_output, check_output
        seen["examples"] += 1
        seen["problems"] += len(lines)

    run()
    figure("7 config fuzz (structures)", **seen)


# -- what the fuzz found (each fixed; kept as regression tests) -------------------------

BROKEN = [
    pytest.param(
        ("tenants", 0, "url"),
        "http://[",
        id="tenant-url-unclosed-bracket",
    ),
    pytest.param(
        ("tenants", 0, "logo_url"),
        "https://[::1/logo.svg",
        id="logo-url-unclosed-bracket",
    ),
    pytest.param(
        ("pbx", "recording_url"),
        "https://[x/{recordingfile}",
        id="recording-url-unclosed-bracket",
    ),
    pytest.param(
        ("database", "url"),
        "postgresql+psycopg://user@host:port/db",
        id="database-url-non-numeric-port",
    ),
    pytest.param(
        ("tenants", 0, "api_key_file"),
        "/tmp/key\x00file",
        id="api-key-file-with-nul",
    ),
    pytest.param(
        ("tenants", 0, "api_key_file"),
        "key.bin",
        id="api-key-file-not-utf8",
    ),
]


@pytest.mark.parametrize(("where", "value"), BROKEN)
def test_a_bad_value_gives_exit_2_not_a_traceback(
    where: tuple[Any, ...], value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("fuzz-found")
    (folder / "key.bin").write_bytes(b"\xff\xfe\x00binary")
    data = base_config(folder)
    holder = parent(data, where)
    if where[-1] == "api_key_file":
        del holder["api_key"]
    holder[where[-1]] = value
    path = folder / "c.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    path.chmod(0o600)
    with inside(folder):
        code, output = cli(path, "once")
    assert code == 2
    assert problem_lines(output, path)[0].startswith(".".join(map(str, where)).replace(".0", "[0]"))


@pytest.mark.parametrize("where", ["/etc/passwd", "/proc/1/forbidden", "logs\x00"])
def test_a_log_folder_that_cannot_be_created_is_one_line_not_a_traceback(
    where: str, tmp_path: Path
) -> None:
    data = base_config(tmp_path)
    data["logging"]["dir"] = where
    path = tmp_path / "c.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    path.chmod(0o600)
    done = run_cli(path, "once", keep=tmp_path / "once")  # a child: it configures logging
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.code in (1, 2), done.stderr
    assert "logging.dir" in done.stderr or "log" in done.stderr.lower()


def test_a_key_name_with_a_line_break_stays_on_one_line(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("fuzz-key")
    data = base_config(folder)
    data["sync"]["max_in_flight\nbatch_size"] = 4
    path = folder / "c.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    path.chmod(0o600)
    with inside(folder):
        code, output = cli(path, "once")
    assert code == 2
    assert len(output.rstrip("\n").split("\n")) == 1, output
