"""Directory rows -> tenant settings, defaults, the merge with [[tenants]], the turn order.

Pure parts only: rows are given as dicts (the integration test reads them from PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from sync import config
from sync.engine.cycle import CycleOutcome, CycleReport
from sync.engine.turns import due_first, merged
from sync.tenants_directory import merged as merge_tenants
from sync.tenants_directory import parse_rows, row_data

KEY = Fernet.generate_key()


def settings(tmp_path: Path, extra: str = "", tenants: str = "") -> config.Settings:
    key_file = tmp_path / "fernet.key"
    key_file.write_bytes(KEY + b"\n")
    path = tmp_path / "retailcrm-sync.toml"
    path.write_text(
        f"""
[source]
tenant_column = "accountcode"
[tenants_directory]
url = "postgresql+psycopg://reader@127.0.0.1/pbx"
query = "select * from enterprises"
key_file = "{key_file}"
[tenant_defaults]
url = "https://default.retailcrm.ru"
timezone = "Europe/Minsk"
rate_limit = 20
{extra}
{tenants}
""",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return config.load(path, {"FILE_KEY": "file-key-0123456789"})


def row(name: str, **values: object) -> dict[str, object]:
    return {"name": name, "match": name, "api_key": f"key-{name}-0123456789"} | values


def test_a_row_takes_the_defaults_it_leaves_out(tmp_path: Path) -> None:
    s = settings(tmp_path)
    found = parse_rows(s, [row("acme", url=None, rate_limit=None, extensions='{"151": 16}')], {})
    (tenant,) = found.tenants
    assert found.skipped == ()
    assert tenant.url == "https://default.retailcrm.ru" and tenant.rate_limit == 20.0
    assert tenant.timezone == "Europe/Minsk" and dict(tenant.extensions) == {"151": 16}
    assert tenant.api_key.reveal() == "key-acme-0123456789"


def test_a_bad_row_is_skipped_with_its_row_and_key_the_others_stay(tmp_path: Path) -> None:
    s = settings(tmp_path)
    rows = [
        row("a1"),
        row("b2", url="ftp://nope"),
        row("c3", extensions="{not json"),
        row("d4", timezone="Mars/Base"),
        row("e5", colour="blue"),
        row("a1"),
    ]
    found = parse_rows(s, rows, {})
    assert [t.name for t in found.tenants] == ["a1"]
    text = "\n".join(found.skipped)
    assert "tenants_directory[row 2 'b2'].url: not a URL" in text
    assert "tenants_directory[row 3 'c3'].extensions: not JSON" in text
    assert "tenants_directory[row 4 'd4'].timezone: unknown time zone" in text
    assert "tenants_directory[row 5 'e5'].colour: unknown key" in text
    assert "tenants_directory[row 6 'a1'].name: duplicate tenant name" in text
    assert "key-" not in text, "no key in a reason"


def test_encrypted_keys_decrypt_and_a_wrong_key_skips_only_that_row(tmp_path: Path) -> None:
    s = settings(tmp_path)
    good = Fernet(KEY).encrypt(b"secret-acme-0123456789").decode()
    other = Fernet(Fernet.generate_key()).encrypt(b"secret-beta-0123456789").decode()
    rows = [
        {"name": "acme", "match": "acme", "api_key_encrypted": good},
        {"name": "beta", "match": "beta", "api_key_encrypted": other},
    ]
    found = parse_rows(s, rows, {})
    assert [t.name for t in found.tenants] == ["acme"]
    assert found.tenants[0].api_key.reveal() == "secret-acme-0123456789"
    (reason,) = found.skipped
    assert "row 2 'beta'].api_key_encrypted: cannot be decrypted" in reason
    assert other not in reason and "secret-beta" not in reason


def test_the_file_wins_a_name_in_both(tmp_path: Path) -> None:
    tenants = """
[[tenants]]
name = "acme"
match = "acme"
api_key_env = "FILE_KEY"
url = "https://file.retailcrm.ru"
"""
    s = settings(tmp_path, tenants=tenants)
    found = parse_rows(s, [row("acme", url="https://row.retailcrm.ru"), row("beta")], {})
    together = merge_tenants(s, found)
    assert [t.name for t in together.tenants] == ["acme", "beta"]
    assert together.tenants[0].url == "https://file.retailcrm.ru"
    assert together.tenants[0].timezone == "Europe/Minsk", "file tenants get the defaults too"


def test_without_tenants_a_directory_is_enough_and_defaults_are_checked(tmp_path: Path) -> None:
    assert settings(tmp_path).tenants == ()
    with pytest.raises(config.ConfigError) as err:
        settings(tmp_path, extra='name = "x"\nwobble = 1')
    text = str(err.value)
    assert "tenant_defaults.name: not a tenant key that can have a default" in text
    assert "tenant_defaults.wobble" in text


def test_row_values_of_sql_types() -> None:
    from decimal import Decimal

    data, problems = row_data(
        {"rate_limit": Decimal("12"), "create_customers": 1, "site": None, "extensions": ""}
    )
    assert data == {"rate_limit": 12, "create_customers": True, "extensions": {}}
    assert problems == []


def test_due_tenants_never_run_first_then_oldest() -> None:
    at = {"b": datetime(2026, 1, 1, 10), "c": datetime(2026, 1, 1, 9), "d": None}
    assert due_first(["a", "b", "c", "d"], at) == ["a", "d", "c", "b"]


def test_ties_go_in_an_order_of_each_process_own() -> None:
    same = datetime(2026, 1, 1, 9)
    names = [f"t{i:03d}" for i in range(50)]
    at = dict.fromkeys(names, same) | {"late": datetime(2026, 1, 1, 10)}
    one, two = due_first([*names, "late"], at, "host:1"), due_first([*names, "late"], at, "host:2")
    assert one[-1] == two[-1] == "late", "next_run_at still decides"
    assert sorted(one) == sorted(two) and one != two
    assert due_first(names, at, "host:1") == due_first(names, at, "host:1"), "stable"


def test_slices_of_one_tenant_make_one_report() -> None:
    first = CycleReport("t", read=10, sent=4, new=10)
    first.yielded = True
    later = CycleReport("t", outcome=CycleOutcome.IDLE, sent=6)
    both = merged(first, later)
    assert both.outcome == "ok" and both.sent == 10 and both.read == 10 and not both.yielded
