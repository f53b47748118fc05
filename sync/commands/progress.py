"""Progress bars for long operations, shown only on a terminal (never in logs or cron mail)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from sync.engine.cycle import Progress


@contextmanager
def upload_bar(label: str) -> Iterator[Progress]:
    """A bar fed with (done, known) counts; the total grows as more calls are found."""
    bar = tqdm(desc=label, unit="call", disable=not sys.stderr.isatty(), dynamic_ncols=True)

    def update(done: int, known: int) -> None:
        if known > (bar.total or 0):
            bar.total = known
        bar.update(max(0, done - bar.n))

    try:
        yield update
    finally:
        bar.close()
