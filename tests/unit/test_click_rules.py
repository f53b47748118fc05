"""Click-to-call rules C1–C5 and C7, the dial string, the injection guard: pure functions."""

from __future__ import annotations

import re

import pytest

from sync.ami.protocol import Message, Parser, encode_action
from sync.bridge.clicks import (
    Dedup,
    check_caller,
    http_originate_url,
    new_click_id,
    originate_fields,
    originate_reason,
)
from sync.bridge.dialing import (
    Refusal,
    dial_string,
    dialable_e164,
    international_prefix,
    number_allowed,
    phone_text_problem,
)
from sync.config import OriginateSettings, Secret

EXT = r"^\d{2,5}$"


@pytest.mark.parametrize(
    ("e164", "country", "fmt", "prefixes", "expected"),
    [
        ("+375291234567", "BY", "national", (), "80291234567"),
        ("+375291234567", "BY", "e164", (), "375291234567"),
        ("+375291234567", "BY", "international", (), "810375291234567"),
        ("+48221234567", "BY", "national", (), "81048221234567"),
        ("+375291234567", "BY", "national", ("9",), "980291234567"),
        ("+4930123456", "DE", "national", (), "030123456"),
        ("+4930123456", "DE", "international", (), "004930123456"),
        ("+12025550123", "US", "national", (), "2025550123"),
        ("+375291234567", "US", "national", (), "011375291234567"),
        ("+74951234567", "RU", "national", (), "84951234567"),
        ("+48221234567", "PL", "e164", ("0", "9"), "048221234567"),
    ],
)
def test_dial_string_per_country_and_format(
    e164: str, country: str, fmt: str, prefixes: tuple[str, ...], expected: str
) -> None:
    assert dial_string(e164, dial_format=fmt, country=country, dial_prefixes=prefixes) == expected


def test_international_prefix_drops_the_wait_for_tone_mark() -> None:
    assert international_prefix("BY") == "810"
    assert international_prefix("DE") == "00"
    assert international_prefix("US") == "011"


@pytest.mark.parametrize(
    "raw",
    [
        "+375 29 123-45-67",
        "8 (029) 123.45.67",
        "80291234567",
    ],
)
def test_guard_accepts_what_people_type(raw: str) -> None:
    assert phone_text_problem(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "80291234567\r\nAction: Originate",
        "80291234567\nChannel: SIP/evil",
        "80291234567\r",
        "Exten: 123",
        "8029123456a",
        "+375291234567;2",
        "80291234567#",
        "８０２９１２３４５６７",  # full-width digits are not digits for the PBX
        "",
        "1" * 41,
    ],
)
def test_guard_refuses_injection_and_odd_characters(raw: str) -> None:
    assert phone_text_problem(raw) is not None
    assert isinstance(dialable_e164(raw, country="BY", extension_pattern=EXT, allow=()), Refusal)


def test_numbers_outside_the_home_country_are_refused_by_default() -> None:
    assert dialable_e164("80291234567", country="BY", extension_pattern=EXT, allow=()) == (
        "+375291234567"
    )
    refused = dialable_e164("+48221234567", country="BY", extension_pattern=EXT, allow=())
    assert isinstance(refused, Refusal) and refused.status == 400
    premium = dialable_e164("+882345678901", country="BY", extension_pattern=EXT, allow=())
    assert isinstance(premium, Refusal)


def test_allow_patterns_replace_the_default() -> None:
    allow = (r"^\+48", r"^\+375(29|33|44)")
    assert number_allowed("+48221234567", allow, "BY")
    assert number_allowed("+375291234567", allow, "BY")
    assert not number_allowed("+375171234567", allow, "BY")


def test_an_extension_or_invalid_number_is_not_dialled() -> None:
    for raw in ("101", "12345", "+375 00"):
        result = dialable_e164(raw, country="BY", extension_pattern=EXT, allow=())
        assert isinstance(result, Refusal) and result.status == 400


def test_c1_code_and_user_must_match() -> None:
    extensions = {"101": 11, "102": 12}
    assert check_caller(extensions, "101", "11") is None
    assert check_caller(extensions, "101", "") is None
    wrong_user = check_caller(extensions, "101", "12")
    assert wrong_user is not None and wrong_user.status == 403
    unknown = check_caller(extensions, "999", "11")
    assert unknown is not None and unknown.status == 403
    assert check_caller(extensions, "", "") is not None


def test_c5_dedup_window() -> None:
    now = [100.0]
    dedup = Dedup(10, clock=lambda: now[0])
    assert dedup.first("shop", "101", "+375291234567")
    assert not dedup.first("shop", "101", "+375291234567")
    assert dedup.first("shop", "102", "+375291234567")
    assert dedup.first("other", "101", "+375291234567")
    now[0] += 10.5
    assert dedup.first("shop", "101", "+375291234567")
    dedup.forget("shop", "101", "+375291234567")
    assert dedup.first("shop", "101", "+375291234567")


def test_c5_dedup_keeps_only_the_clicks_of_the_last_window() -> None:
    """A steady stream of clicks holds one window of them, not up to a thousand."""
    now = [0.0]
    dedup = Dedup(10, clock=lambda: now[0])
    for n in range(3000):
        now[0] = n * 0.5
        assert dedup.first("shop", "101", f"+375291{n:06d}")
        assert not dedup.first("shop", "101", f"+375291{n:06d}")
    assert len(dedup) == 20
    now[0] += 10
    assert dedup.first("shop", "101", "+375291234567") and len(dedup) == 1


def test_c4_originate_fields() -> None:
    click_id = new_click_id()
    assert re.fullmatch(r"c2c-[0-9a-f]{24}", click_id) and len(click_id) <= 32
    fields = originate_fields(
        OriginateSettings(), extension="101", dial="80291234567", e164="+375291234567",
        click_id=click_id,
    )  # fmt: skip
    assert fields == {
        "Channel": "Local/101@originate-skipvm",
        "Context": "from-internal",
        "Exten": "80291234567",
        "Priority": "1",
        "CallerID": '"+375291234567" <+375291234567>',
        "Timeout": "30000",
        "Async": "true",
        "ChannelId": click_id,
    }


def test_c6_originate_reasons() -> None:
    assert originate_reason(True, "4") == "answered"
    assert originate_reason(False, "5") == "busy"
    assert originate_reason(False, "3") == "no_answer"
    assert originate_reason(False, "0") == "failed"
    assert originate_reason(False, "8") == "failed"
    assert originate_reason(False, "") == "failed"


def test_c7_http_url_is_filled_and_quoted() -> None:
    settings = OriginateSettings(
        method="http",
        http_url="http://pbx/api/makecallexternal?code={extension}&phone={number}&e={phone}&clientId={secret}",
        http_secret=Secret("a&b=c"),
    )
    url = http_originate_url(settings, extension="101", dial="80291234567", e164="+375291234567")
    assert url == (
        "http://pbx/api/makecallexternal?code=101&phone=80291234567&e=%2B375291234567"
        "&clientId=a%26b%3Dc"
    )


def test_ami_encoder_is_the_last_guard() -> None:
    assert (
        encode_action({"Action": "Ping", "ActionID": "1"}) == b"Action: Ping\r\nActionID: 1\r\n\r\n"
    )
    for bad in ({"Exten": "1\r\nAction: Hangup"}, {"Exten": "1\n"}, {"Ex:ten": "1"}):
        with pytest.raises(ValueError):
            encode_action(bad)


def test_ami_parser_splits_messages_across_reads() -> None:
    parser = Parser()
    data = (
        b"Asterisk Call Manager/9.0.0\r\n"
        b"Response: Success\r\nActionID: a\r\n\r\nEvent: Newchannel\r\nUni"
    )
    first = parser.feed(data)
    assert parser.banner == "Asterisk Call Manager/9.0.0"
    assert [m.as_dict() for m in first] == [{"Response": "Success", "ActionID": "a"}]
    rest = parser.feed(b"queid: 1.2\r\n\r\n")
    assert rest == [Message((("Event", "Newchannel"), ("Uniqueid", "1.2")))]
    assert not rest[0].is_response
    originate = Message((("Event", "OriginateResponse"), ("Response", "Success")))
    assert not originate.is_response
