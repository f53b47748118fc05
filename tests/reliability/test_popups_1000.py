"""Issue #13's invariants at full size: 1 000 scripted calls with 5 AMI drops (each in the
middle of a batch of overlapping calls, its middle third lost), then ``once`` over the same
calls' CDR legs. Slow: the CRM's 40 requests/s per key paces ~3 000 pop-ups."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.emulator import Emulator
from sync.pbx_emulator import PbxEmulator
from sync.pbx_emulator.scenarios.mix import scripted_mix
from tests.crm_fixtures import emulator  # noqa: F401
from tests.integration.test_popups import (
    assert_invariants,
    assert_upload_carries_the_same_ids,
    play_mix,
    start_of_day,
)
from tests.live_fixtures import AMI_SECRET, live_env  # noqa: F401
from tests.popup_fixtures import popup_rig

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.usefixtures("live_env")]


@pytest.fixture
def pbx() -> Iterator[PbxEmulator]:
    with PbxEmulator(secret=AMI_SECRET) as server:
        yield server


def test_thousand_calls_with_five_drops(
    tmp_path: Path,
    emulator: Emulator,  # noqa: F811
    pbx: PbxEmulator,
) -> None:
    with popup_rig(tmp_path, emulator, pbx, serve="popup_group_ms = 0") as rig:
        calls = scripted_mix(1000, start_of_day())
        play_mix(rig, calls, drops=5)
        assert rig.popups.resyncs == 6
        assert_invariants(rig, calls)
        assert_upload_carries_the_same_ids(rig, calls)
        dropped = rig.serve.service.bridge.metrics.render().decode()
        assert 'outcome="dropped"' not in dropped, "no pop-up missed its deadline"
