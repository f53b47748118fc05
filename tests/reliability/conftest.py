"""The reliability suite (issue 7): ``make reliability``; ``RELIABILITY_SIZE=ci`` for CI.

Every test's ``tmp_path`` (config, log folder, stderr captures, ``status`` outputs) is
registered for the secrets scenario, which runs last; the figures each scenario measures are
repeated in pytest's terminal summary.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from tests.reliability.common import ARTIFACTS, FIGURES, SIZE, Artifacts

if SIZE not in ("full", "ci"):
    raise pytest.UsageError(f"RELIABILITY_SIZE must be 'full' or 'ci', not {SIZE!r}")


@pytest.fixture(autouse=True, scope="session")
def _quiet_emulator() -> Iterator[None]:
    """The in-process emulator logs every request at DEBUG: keep failure reports readable."""
    logger.remove()
    handler = logger.add(sys.stderr, level="WARNING")
    yield
    with contextlib.suppress(ValueError):  # an in-process command may have replaced it
        logger.remove(handler)
    logger.add(sys.stderr)


@pytest.fixture(autouse=True)
def _watched(tmp_path: Path) -> Iterator[None]:
    ARTIFACTS.watch(tmp_path)
    yield


@pytest.fixture
def artifacts() -> Artifacts:
    return ARTIFACTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section(f"reliability figures (RELIABILITY_SIZE={SIZE})")
    for scenario, values in FIGURES:
        text = " ".join(f"{k}={v}" for k, v in values.items())
        terminalreporter.write_line(f"{scenario}: {text}")
