"""``[serve]``, ``[ami]``, ``[originate]``: defaults, each bad value named by key, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync import config
from sync.crm.module import desired_module
from tests.unit.test_config import ENV, MINIMAL, problems, write

SERVE = """
[serve]
public_url = "https://pbx.example.com/retailcrm/"

[ami]
secret_env = "AMI_SECRET"
"""
ENV_AMI = ENV | {"AMI_SECRET": "ami-s3cret-value"}


def test_defaults_of_the_live_sections(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, MINIMAL + SERVE), ENV_AMI)
    serve, ami, originate = settings.serve, settings.ami, settings.originate
    assert serve is not None and ami is not None
    assert (serve.listen_host, serve.listen_port) == ("127.0.0.1", 8019)
    assert serve.public_url == "https://pbx.example.com/retailcrm"
    assert serve.click_dedup_seconds == 10 and serve.pause_on_status == ("dinner", "break")
    assert (ami.host, ami.port, ami.username, ami.ping_seconds) == (
        "127.0.0.1", 5038, "retailcrm", 10)  # fmt: skip
    assert ami.secret.reveal() == "ami-s3cret-value"
    assert "ami-s3cret-value" not in repr(settings)
    assert "ami-s3cret-value" in settings.secrets()
    assert originate.method == "ami" and originate.channel == "Local/{extension}@originate-skipvm"
    assert originate.dial_format == "national" and originate.allow == ()


def test_without_serve_the_live_sections_are_optional(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, MINIMAL), ENV)
    assert settings.serve is None and settings.ami is None


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('[serve]\npublic_url = "https://x.example"\n', "ami: required when [serve] is set"),
        ("[serve]\n", "serve.public_url: required"),
        (
            '[serve]\npublic_url = "ftp://x"\n[ami]\nsecret_env="AMI_SECRET"',
            "serve.public_url: not a URL",
        ),
        (
            '[serve]\npublic_url = "https://x.example"\nlisten = "8019"\n'
            '[ami]\nsecret_env="AMI_SECRET"',
            "serve.listen: expected HOST:PORT",
        ),
        (
            '[serve]\npublic_url = "https://x.example"\nqueue_interface = "PJSIP/{ext}"\n'
            '[ami]\nsecret_env="AMI_SECRET"',
            "serve.queue_interface: unknown placeholder {ext}",
        ),
        (
            '[serve]\npublic_url = "https://x.example"\npause_on_status = ["lunch"]\n'
            '[ami]\nsecret_env="AMI_SECRET"',
            "serve.pause_on_status: expected a list of user",
        ),
        ("[ami]\nport = 5038\n", "ami.secret_env: required"),
        ('[ami]\nsecret_env = "NOPE"\n', "ami.secret_env: environment variable NOPE is not set"),
        ('[ami]\nsecret_env = "AMI_SECRET"\nsecret = "x"\n', "ami.secret_env: set only one of"),
        (
            '[ami]\nsecret_env = "AMI_SECRET"\nusername = "a\\r\\nAction: x"\n',
            "ami.username: letters, digits",
        ),
        (
            '[ami]\nsecret_env = "AMI_SECRET"\nping_seconds = 0\n',
            "ami.ping_seconds: must be between",
        ),
        ('[originate]\nmethod = "sip"\n', "originate.method: must be one of ami, http"),
        ('[originate]\nmethod = "http"\n', "originate.http_url: required when method = 'http'"),
        ('[originate]\nchannel = "PJSIP/101"\n', "originate.channel: must contain {extension}"),
        ('[originate]\ndial_format = "local"\n', "originate.dial_format: must be one of"),
        ('[originate]\nallow = ["(+"]\n', "originate.allow: '(+': not a valid regular expression"),
        ('[originate]\ncaller_id = "{name}"\n', "originate.caller_id: unknown placeholder {name}"),
        (
            '[originate]\nhttp_url = "http://pbx/{secret}?x={user}"\n',
            "originate.http_url: unknown placeholder {user}",
        ),
        ('[originate]\ncontext = "from internal"\n', "originate.context: letters, digits"),
        ("[originate]\nspeed = 1\n", "originate.speed: unknown key"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, snippet: str, expected: str) -> None:
    found = problems(tmp_path, MINIMAL + snippet, ENV_AMI)
    assert any(p.startswith(expected) for p in found), found
    assert not any("ami-s3cret-value" in p for p in found)


def test_secret_file_and_literal_follow_the_api_key_rules(tmp_path: Path) -> None:
    secret_file = tmp_path / "ami"
    secret_file.write_text("from-file-secret\n", encoding="utf-8")
    text = MINIMAL + f'[ami]\nsecret_file = "{secret_file}"\n'
    ami = config.load(write(tmp_path, text), ENV).ami
    assert ami is not None and ami.secret.reveal() == "from-file-secret"
    literal = MINIMAL + '[ami]\nsecret = "literal-secret"\n'
    path = write(tmp_path, literal, mode=0o644)
    with pytest.raises(config.ConfigError) as info:
        config.load(path, ENV)
    assert any("ami.secret: a literal secret needs" in p for p in info.value.problems)
    assert "literal-secret" not in str(info.value)


def test_register_derives_the_callback_urls(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, MINIMAL + SERVE), ENV_AMI)
    module = desired_module(settings.tenants[0], "cid", settings.serve)
    telephony = module["integrations"]["telephony"]
    assert telephony["makeCallUrl"] == "https://pbx.example.com/retailcrm/make-call"
    assert telephony["changeUserStatusUrl"] == "https://pbx.example.com/retailcrm/user-status"
    assert module["baseUrl"] == "https://pbx.example.com/retailcrm"
    assert module["actions"] == {"activity": "/activity"}
    flags = ("inputEventSupported", "outputEventSupported", "hangupEventSupported")
    assert all(telephony[f] is True for f in flags)
    plain = desired_module(settings.tenants[0], "cid", None)
    assert "makeCallUrl" not in plain["integrations"]["telephony"] and "baseUrl" not in plain
    assert all(plain["integrations"]["telephony"][f] is False for f in flags)
