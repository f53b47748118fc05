"""An Asterisk Manager Interface emulator for tests, the demo and benchmarks (design §6.4)."""

from sync.pbx_emulator.server import PbxEmulator, run_standalone

__all__ = ["PbxEmulator", "run_standalone"]
