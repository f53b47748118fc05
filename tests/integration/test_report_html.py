"""The HTML report: self-contained and deterministic; in headless Chromium with the network
blocked it logs no console message, makes no request and paints a page that is not blank."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from sync.report.html import render_html
from tests.conftest import missing
from tests.report_sample import sample_report

pytestmark = pytest.mark.integration
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
)


def test_same_data_gives_the_same_bytes_and_nothing_external() -> None:
    page = render_html([sample_report()])
    assert page == render_html([sample_report()])
    lower = page.lower()
    for needle in ("<script", "<link", "<img", "@import", "url(", " src="):
        assert needle not in lower
    assert re.findall(r'href="([^"]+)"', page)  # customer links, not resources
    assert all(
        h.startswith("https://shop.retailcrm.ru/customers/")
        for h in re.findall(r'href="([^"]+)"', page)
    )
    assert page.count("<svg") == 6 and "@media print" in page and "max-width:600px" in page
    assert len(page.encode()) < 300_000


def test_several_tenants_share_one_page() -> None:
    one, two = sample_report(1), sample_report(2)
    two["tenant"] = "second"
    page = render_html([one, two])
    assert page.count('<section class="tenant">') == 2 and "second" in page


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing("chromium is not installed (apt-get install chromium)")
    return path


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked for (Chromium's own background requests excluded)."""
    data = json.loads(netlog.read_text(encoding="utf-8"))
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in data["events"]:
        params = event.get("params") or {}
        if event["type"] == start and "url" in params:
            from_page = "file://" in str(params.get("network_isolation_key", ""))
            if from_page and not params["url"].startswith(("file:", "data:", "blob:")):
                urls.append(params["url"])
    return urls


def png_colours(path: Path, step: int = 7) -> int:
    """Distinct colours of a PNG (8-bit RGB/RGBA, stdlib zlib), sampling every ``step`` px."""
    blob = path.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        kind, body = blob[pos + 4 : pos + 8], blob[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    previous = bytearray(stride)
    colours = set()
    for y in range(height):
        row_start = y * (stride + 1)
        kind = raw[row_start]
        row = bytearray(raw[row_start + 1 : row_start + 1 + stride])
        _unfilter(kind, row, previous, bpp)
        if y % step == 0:
            for x in range(0, stride, bpp * step):
                colours.add(bytes(row[x : x + 3]))
        previous = row
    return len(colours)


def _unfilter(kind: int, row: bytearray, prev: bytearray, bpp: int) -> None:
    if kind == 0:
        return
    if kind == 2:
        row[:] = bytes((a + b) & 0xFF for a, b in zip(row, prev, strict=True))
        return
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up = prev[i]
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up) // 2) & 0xFF
        else:
            up_left = prev[i - bpp] if i >= bpp else 0
            p = left + up - up_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
            pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
            row[i] = (row[i] + pred) & 0xFF


def test_the_page_in_headless_chromium_offline(tmp_path: Path) -> None:
    chromium = _chromium()
    page = tmp_path / "report.html"
    page.write_text(render_html([sample_report()]), encoding="utf-8")
    shot, netlog = tmp_path / "shot.png", tmp_path / "net.json"
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--log-net-log={netlog}",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert _page_requests(netlog) == []
    assert png_colours(shot) >= 20, "the screenshot is blank or nearly so"
    dom = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'p2'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0 and dom.stdout.count("<svg") == 6
    pdf = tmp_path / "report.pdf"
    printed = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'p3'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert printed.returncode == 0 and pdf.read_bytes().startswith(b"%PDF")
    pages = pdf.read_bytes().count(b"/Type /Page") - 1  # minus the /Type /Pages node
    assert pages >= 2, "the print layout breaks the report into pages"


def test_an_empty_period_is_announced_on_the_page() -> None:
    assert "No calls in this period" in render_html([{**sample_report(), "empty": True}])
