"""Configuration rules added after the first reader (issue 11): ``[pbx] area_code``, MySQL
refused for our own tables, and defaults that come from the settings dataclasses only."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync import config
from tests.unit.test_config import ENV, MINIMAL, problems, write


def test_area_code_defaults_to_empty_and_reaches_the_builder(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, MINIMAL), ENV)
    assert settings.pbx.area_code == "" and settings.build_options().area_code == ""
    given = config.load(write(tmp_path, MINIMAL + '\n[pbx]\narea_code = "3012"\n'), ENV)
    assert given.pbx.area_code == "3012"
    assert given.build_options().area_code == "3012"


@pytest.mark.parametrize("value", ['"+3012"', '"30-12"', '"(3012)"', '"1234567"', '"٣٠١٢"', "3012"])
def test_area_code_must_be_digits(tmp_path: Path, value: str) -> None:
    found = problems(tmp_path, MINIMAL + f"\n[pbx]\narea_code = {value}\n")
    assert len(found) == 1 and found[0].startswith("pbx.area_code: "), found
    if value != "3012":  # a TOML integer is a type error, like every other string key
        assert "digits only" in found[0]
