"""Configuration: one TOML file turned into immutable, typed settings.

Every problem is reported as ``file: key: reason`` and makes the CLI exit 2, so an operator
sees the typo instead of a default silently taking its place (unknown keys are errors too).
Secrets are read from the environment or a file and wrapped in ``Secret`` so that no repr,
log line or traceback shows them.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# "X as X": re-exported, so ``sync.config`` stays the one import for every settings type.
from sync.calls.legs import CALL_COLUMNS as CALL_COLUMNS
from sync.calls.legs import LEG_COLUMNS as LEG_COLUMNS
from sync.calls.options import BuildOptions, TenantRoute
from sync.settings import DEFAULT_ZONE, RESPONSIBLE, VALUE_KEYS
from sync.settings import FLAVORS as FLAVORS
from sync.settings import PbxSettings as PbxSettings
from sync.settings import SourceSettings as SourceSettings
from sync.settings import ValueSpellings as ValueSpellings

ENV_VAR = "RETAILCRM_SYNC_CONFIG"
DEFAULT_PATH = "retailcrm-sync.toml"
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
_SIZE_RE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)$", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\d+\s*(seconds?|minutes?|hours?|days?|weeks?|months?)$")


class ConfigError(Exception):
    """One or more invalid settings; each line reads ``file: key: reason``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Secret:
    """A value that must never be printed: repr and str show ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///retailcrm-sync.db"


@dataclass(frozen=True)
class SyncSettings:
    batch_size: int = 50
    max_in_flight: int = 4
    max_attempts: int = 10
    lease_seconds: int = 60
    upload_budget_seconds: float = 25.0
    """How long one batch may spend retrying 503/timeouts before it is left for a later cycle."""
    retry_base_seconds: int = 30
    """First delay of a failed call; doubles per attempt up to ``retry_max_seconds``."""
    retry_max_seconds: int = 3600
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    slice_seconds: float = 30.0
    """After this long a tenant's cycle submits no new batch and yields its worker: a huge
    backlog cannot starve the other tenants (the daemon puts it first in line next tick)."""


@dataclass(frozen=True)
class DaemonSettings:
    interval: float = 30
    customers_interval: float = 300
    stop_timeout: float = 30
    keep_days: int = 30
    jitter: float = 3
    workers: int = 8
    """Tenants cycled at once in one process; threads, HTTP pools and database connections
    are bounded by it, never by the number of tenants."""


@dataclass(frozen=True)
class LoggingSettings:
    dir: str = "./logs"
    level: str = "INFO"
    rotation: str = "50 MB"
    retention: str = "30 days"


@dataclass(frozen=True)
class TenantSettings:
    name: str
    url: str
    api_key: Secret = field(repr=False)
    match: str | None = None
    integration_code: str = "asterisk"
    integration_name: str = "Asterisk"
    logo_url: str = ""
    make_call_url: str = ""
    change_user_status_url: str = ""
    timezone: str = DEFAULT_ZONE
    site: str = ""
    create_customers: bool = False
    rate_limit: float = 40.0
    extensions: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    external_phones: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """DID -> shop code, sent as the module's ``externalPhones``."""


TENANT_KEYS: Final = (
    "name",
    "match",
    "url",
    "api_key_env",
    "api_key_file",
    "api_key",
    "integration_code",
    "integration_name",
    "logo_url",
    "make_call_url",
    "change_user_status_url",
    "timezone",
    "site",
    "create_customers",
    "rate_limit",
    "extensions",
    "external_phones",
)
"""Every key of a ``[[tenants]]`` table (and of a directory row, ``[tenant_defaults]``)."""


@dataclass(frozen=True)
class DirectorySettings:
    """``[tenants_directory]``: tenants read from a table (``sync.tenants_directory``)."""

    url: str
    query: str
    reload_seconds: float = 60.0
    key: Secret | None = field(default=None, repr=False)
    """The Fernet key from ``key_file`` that decrypts ``api_key_encrypted``."""


@dataclass(frozen=True)
class ServeSettings:
    """``[serve]``: the live bridge's HTTP side (design §6)."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 8019
    public_url: str = ""
    popup_on: Literal["ring", "answer", "off"] = "ring"
    popup_group_ms: int = 300
    popup_deadline_seconds: float = 3
    click_dedup_seconds: float = 10
    pause_on_status: tuple[str, ...] = ("dinner", "break")
    queue_interface: str = "PJSIP/{extension}"


@dataclass(frozen=True)
class AmiSettings:
    """``[ami]``: the one Asterisk Manager Interface connection of ``serve``."""

    secret: Secret = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "retailcrm"
    ping_seconds: float = 10
    tenant_field: str = ""
    connect_timeout: float = 5


@dataclass(frozen=True)
class OriginateSettings:
    """``[originate]``: how a click becomes a call (rules C3, C4, C7)."""

    method: Literal["ami", "http"] = "ami"
    channel: str = "Local/{extension}@originate-skipvm"
    context: str = "from-internal"
    caller_id: str = '"{phone}" <{phone}>'
    timeout_seconds: int = 30
    dial_format: Literal["e164", "national", "international"] = "national"
    allow: tuple[str, ...] = ()
    """Regexes on the E.164 number; empty: numbers of ``[pbx] country`` only."""
    http_url: str = ""
    http_secret: Secret = field(default_factory=lambda: Secret(""), repr=False)


@dataclass(frozen=True)
class Settings:
    path: Path
    database: DatabaseSettings
    source: SourceSettings
    pbx: PbxSettings
    sync: SyncSettings
    daemon: DaemonSettings
    logging: LoggingSettings
    tenants: tuple[TenantSettings, ...]
    directory: DirectorySettings | None = None
    tenant_defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """``[tenant_defaults]`` as written: what a tenant (file or directory) leaves out."""
    skipped: tuple[str, ...] = ()
    """Directory rows left out, each with its reason (no secret): ``check`` lists them."""
    serve: ServeSettings | None = None
    """``None`` without a ``[serve]`` table: ``serve`` refuses to start, ``register`` sends no
    callback URLs."""
    ami: AmiSettings | None = None
    originate: OriginateSettings = field(default_factory=OriginateSettings)

    def secrets(self) -> list[str]:
        """Every secret value, for the log redaction filter."""
        values = [t.api_key.reveal() for t in self.tenants]
        if self.directory is not None and self.directory.key is not None:
            values.append(self.directory.key.reveal())
        if self.ami is not None:
            values.append(self.ami.secret.reveal())
        values.append(self.originate.http_secret.reveal())
        urls = [self.database.url, self.source.url]
        urls += [self.directory.url] if self.directory is not None else []
        for url in urls:
            parts = _split(url)
            password = parts.password if parts else None
            if password:
                values.append(password)
        return [v for v in values if v]

    def tenant(self, name: str) -> TenantSettings:
        for tenant in self.tenants:
            if tenant.name == name:
                return tenant
        raise KeyError(name)

    def build_options(self) -> BuildOptions:
        """The call builder's view of this configuration; built once, as it lists every
        tenant (thousands, from a directory) and the builder memoises its context by it."""
        return self._build_options

    @cached_property
    def _build_options(self) -> BuildOptions:
        src, pbx = self.source, self.pbx
        return BuildOptions(
            country=pbx.country,
            extension_pattern=pbx.extension_pattern,
            extension_channel_pattern=pbx.extension_channel_pattern,
            trunk_channel_pattern=pbx.trunk_channel_pattern,
            responsible=pbx.responsible,
            dial_prefixes=pbx.dial_prefixes,
            area_code=pbx.area_code,
            external_id_prefix=pbx.external_id_prefix,
            recording_url=pbx.recording_url,
            source_timezone=src.timezone,
            settle_seconds=src.settle_seconds,
            orphan_settle_seconds=src.orphan_settle_seconds,
            start_date=src.start_date,
            tenants=tuple(
                TenantRoute(name=t.name, match=t.match, timezone=t.timezone, site=t.site)
                for t in self.tenants
            ),
            values=src.values,
            has_ended_at="ended_at" in src.columns,
        )


def resolve_path(cli_path: str | None) -> Path:
    """``--config``, else ``$RETAILCRM_SYNC_CONFIG``, else ``./retailcrm-sync.toml``."""
    return Path(cli_path or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate ``path``; raises ``ConfigError`` listing every problem."""
    env = os.environ if environ is None else environ
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: file not found (run `retailcrm-sync init` to write an example)"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    return _Parser(path, env).settings(data)


T = TypeVar("T")


class _Table:
    """One TOML table being read: remembers which keys were used, so leftovers are errors."""

    def __init__(self, parser: _Parser, prefix: str, data: object) -> None:
        self.parser = parser
        self.prefix = prefix
        if data is None:
            data = {}
        if not isinstance(data, dict):
            parser.problem(prefix, "must be a table")
            data = {}
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        shown = name if name.isprintable() else repr(name)  # keep each report on one line
        return f"{self.prefix}.{shown}" if self.prefix else shown

    def get(
        self,
        name: str,
        kind: type[T] | tuple[type, ...],
        default: T,
        check: Callable[[Any], str | None] | None = None,
    ) -> T:
        self.used.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a TOML `true` is never a number here.
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        elif float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            ok = True
        else:
            ok = isinstance(value, kinds)
        if not ok:
            self.parser.problem(self.key(name), f"expected {_kind_name(kinds)}, got {value!r}")
            return default
        if check is not None:
            reason = check(value)
            if reason:
                self.parser.problem(self.key(name), reason)
                return default
        return value  # type: ignore[no-any-return]

    def table(self, name: str) -> _Table:
        self.used.add(name)
        return _Table(self.parser, self.key(name), self.data.get(name))

    def finish(self) -> None:
        for name in sorted(set(self.data) - self.used):
            self.parser.problem(self.key(name), "unknown key")


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    names |= {list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def _between(low: float, high: float) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be between {low:g} and {high:g}"

    return check


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None


def _zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r} (use an IANA name such as Europe/Minsk)"
    return None


def _db_url(value: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        return "not a database URL (e.g. postgresql+psycopg://user@host/db)"
    if url.get_backend_name() not in ("postgresql", "mysql", "mariadb", "sqlite"):
        return f"unsupported database {url.get_backend_name()!r} (postgresql, mysql, sqlite)"
    return None


def _own_db_url(value: str) -> str | None:
    reason = _db_url(value)
    if reason:
        return reason
    from sqlalchemy.engine import make_url

    if make_url(value).get_backend_name() in ("mysql", "mariadb"):
        return (
            "MySQL/MariaDB is for the call log only ([source] url); our own tables need "
            "PostgreSQL or SQLite (ANALYZE and SKIP LOCKED assume them)"
        )
    return None


def _split(value: str) -> SplitResult | None:
    """``urlsplit``, or None for what it cannot even split (``http://[``)."""
    try:
        parts = urlsplit(value)
        parts.hostname  # noqa: B018 - raises ValueError on a bad bracketed host
    except ValueError:
        return None
    return parts


def _http_url(value: str) -> str | None:
    parts = _split(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return "not a URL (e.g. https://shop.retailcrm.ru)"
    return None


def _base_url(value: str) -> str | None:
    reason = _http_url(value)
    if reason:
        return reason
    parts = _split(value)
    if parts is not None and (parts.path.strip("/") or parts.query):
        return "must be the account address only, without a path (e.g. https://shop.retailcrm.ru)"
    return None


def _country(value: str) -> str | None:
    import phonenumbers

    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        return f"unknown country code {value!r} (ISO 3166 alpha-2, e.g. BY)"
    return None


def _recording_template(value: str) -> str | None:
    if not value:
        return None
    reason = _http_url(value.replace("{", "").replace("}", ""))
    if reason:
        return "must be an http(s) URL template, e.g. https://pbx.example.com/rec/{recordingfile}"
    allowed = {"recordingfile", "uniqueid", "linkedid", "date"}
    unknown = set(re.findall(r"{([^{}]*)}", value)) - allowed
    if unknown:
        return (
            f"unknown placeholder {{{sorted(unknown)[0]}}} (allowed: {', '.join(sorted(allowed))})"
        )
    return None


def _start_date(value: str) -> str | None:
    return None if _parse_local(value) else "expected 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD'"


def _parse_local(value: str) -> datetime | None:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def _size(value: str) -> str | None:
    return None if _SIZE_RE.match(value) else "expected a size such as '50 MB'"


def _retention(value: str) -> str | None:
    return None if _DURATION_RE.match(value) else "expected a duration such as '30 days'"


class _Parser:
    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ
        self.problems: list[str] = []

    def problem(self, key: str, reason: str) -> None:
        self.problems.append(f"{self.path}: {key}: {reason}")

    def settings(self, data: dict[str, Any]) -> Settings:
        root = _Table(self, "", data)
        database = self.database(root.table("database"))
        source = self.source(root.table("source"), database.url)
        pbx = self.pbx(root.table("pbx"))
        sync = self.sync(root.table("sync"))
        daemon = self.daemon(root.table("daemon"))
        logging = self.logging(root.table("logging"))
        directory = self.directory(root.table("tenants_directory"), "tenants_directory" in data)
        defaults = self.tenant_defaults(root.table("tenant_defaults"))
        tenants = self.tenants(root, source, defaults, directory is not None)
        serve = self.serve(root.table("serve")) if "serve" in root.data else None
        ami = self.ami(root.table("ami")) if "ami" in root.data else None
        originate = self.originate(root.table("originate"))
        if serve is not None and ami is None and originate.method == "ami":
            self.problem("ami", "required when [serve] is set with originate.method = 'ami'")
        root.used.update(("serve", "ami"))
        root.finish()
        if self.problems:
            raise ConfigError(self.problems)
        return Settings(
            self.path,
            database,
            source,
            pbx,
            sync,
            daemon,
            logging,
            tenants,
            directory=directory,
            tenant_defaults=MappingProxyType(defaults),
            serve=serve,
            ami=ami,
            originate=originate,
        )

    def directory(self, t: _Table, present: bool) -> DirectorySettings | None:
        if not present:
            t.finish()
            return None
        url = t.get("url", str, "", _db_url)
        query = t.get("query", str, "", _non_empty)
        for needed in ("url", "query"):
            if needed not in t.data:
                self.problem(t.key(needed), "required")
        reload_seconds = t.get("reload_seconds", float, 60.0, _between(5, 86400))
        key_file = t.get("key_file", str, "", _non_empty)
        key = None
        if key_file:
            key = Secret(self.key_file(t.key("key_file"), Path(key_file)))
            if key.reveal() and not _fernet_key(key.reveal()):
                self.problem(
                    t.key("key_file"),
                    "not a Fernet key (make one with `retailcrm-sync keys generate`)",
                )
        t.finish()
        return DirectorySettings(url, query, reload_seconds, key)

    def tenant_defaults(self, t: _Table) -> dict[str, Any]:
        """Keys every tenant gets unless it sets them; checked as part of each tenant."""
        allowed = set(TENANT_KEYS) - {"name", "match"}
        for name in sorted(set(t.data) - allowed):
            t.used.add(name)
            self.problem(t.key(name), "not a tenant key that can have a default")
        t.used.update(t.data)
        return {k: v for k, v in t.data.items() if k in allowed}

    def serve(self, t: _Table) -> ServeSettings:
        d = ServeSettings()
        listen = t.get("listen", str, f"{d.listen_host}:{d.listen_port}", _listen)
        host, port = _split_listen(listen) or (d.listen_host, d.listen_port)
        if "public_url" not in t.data:
            self.problem(t.key("public_url"), "required: the address RetailCRM reaches us at")
        settings = ServeSettings(
            listen_host=host,
            listen_port=port,
            public_url=t.get("public_url", str, "", _public_url).rstrip("/"),
            popup_on=t.get("popup_on", str, d.popup_on, _one_of("ring", "answer", "off")),  # type: ignore[arg-type]
            popup_group_ms=t.get("popup_group_ms", int, d.popup_group_ms, _between(0, 5000)),
            popup_deadline_seconds=t.get(
                "popup_deadline_seconds", float, d.popup_deadline_seconds, _between(0.1, 60)
            ),
            click_dedup_seconds=t.get(
                "click_dedup_seconds", float, d.click_dedup_seconds, _between(0, 3600)
            ),
            pause_on_status=tuple(
                t.get("pause_on_status", list, list(d.pause_on_status), _statuses)
            ),
            queue_interface=t.get(
                "queue_interface", str, d.queue_interface, _template("extension")
            ),
        )
        t.finish()
        return settings

    def ami(self, t: _Table) -> AmiSettings:
        d = AmiSettings(secret=Secret(""))
        settings = AmiSettings(
            secret=self.secret(t, "secret", required=True),
            host=t.get("host", str, d.host, _host),
            port=t.get("port", int, d.port, _between(1, 65535)),
            username=t.get("username", str, d.username, _ami_value),
            ping_seconds=t.get("ping_seconds", float, d.ping_seconds, _between(1, 600)),
            tenant_field=t.get("tenant_field", str, d.tenant_field, _header_name),
            connect_timeout=t.get("connect_timeout", float, d.connect_timeout, _between(0.1, 60)),
        )
        t.finish()
        return settings

    def originate(self, t: _Table) -> OriginateSettings:
        d = OriginateSettings()
        method = t.get("method", str, d.method, _one_of("ami", "http"))
        http_url = t.get("http_url", str, "", _template("extension", "number", "phone", "secret"))
        if method == "http" and not http_url:
            self.problem(t.key("http_url"), "required when method = 'http'")
        if http_url and _http_url(re.sub(r"{\w+}", "x", http_url)):
            self.problem(t.key("http_url"), "must be an http(s) URL template")
        formats = _one_of("e164", "national", "international")
        dial_format: str = t.get("dial_format", str, d.dial_format, formats)
        settings = OriginateSettings(
            method=method,  # type: ignore[arg-type]
            channel=t.get("channel", str, d.channel, _template("extension", required="extension")),
            context=t.get("context", str, d.context, _ami_value),
            caller_id=t.get("caller_id", str, d.caller_id, _template("phone", "extension")),
            timeout_seconds=t.get("timeout_seconds", int, d.timeout_seconds, _between(5, 300)),
            dial_format=dial_format,  # type: ignore[arg-type]
            allow=tuple(t.get("allow", list, [], _regex_list)),
            http_url=http_url,
            http_secret=self.secret(t, "http_secret", required=False),
        )
        t.finish()
        return settings

    def secret(self, t: _Table, stem: str, *, required: bool) -> Secret:
        """``<stem>_env``, ``<stem>_file`` or a literal ``<stem>``: the api_key rules."""
        names = (f"{stem}_env", f"{stem}_file", stem)
        given = [k for k in names if k in t.data and t.data[k] != ""]
        t.used.update(names)
        if not given:
            if required:
                self.problem(t.key(names[0]), f"required: set one of {', '.join(names)}")
            return Secret("")
        if len(given) > 1:
            self.problem(t.key(names[0]), f"set only one of {', '.join(names)}")
            return Secret("")
        which = given[0]
        value = t.data[which]
        if not isinstance(value, str):
            self.problem(t.key(which), "expected a string")
            return Secret("")
        if which == names[0]:
            found = self.environ.get(value, "")
            if not found:
                self.problem(t.key(which), f"environment variable {value} is not set or empty")
        elif which == names[1]:
            found = self.key_file(t.key(which), Path(value))
        else:
            found = value
            if _group_or_world_readable(self.path):
                self.problem(
                    t.key(which),
                    "a literal secret needs a config file readable by its owner only "
                    f"(chmod 600 {self.path}); or use {names[0]} / {names[1]}",
                )
        if any(c in found for c in "\r\n"):
            self.problem(t.key(which), "must be one line")
            return Secret("")
        return Secret(found.strip())

    def database(self, t: _Table) -> DatabaseSettings:
        url = t.get("url", str, DatabaseSettings.url, _own_db_url)
        t.finish()
        return DatabaseSettings(url=url)

    def source(self, t: _Table, default_url: str) -> SourceSettings:
        d = SourceSettings(url=default_url)
        url = t.get("url", str, d.url, _db_url)
        table = t.get("table", str, d.table, _identifier)
        flavor = t.get("flavor", str, d.flavor, _one_of(*FLAVORS))
        tz = t.get("timezone", str, d.timezone, _zone)
        settle = t.get("settle_seconds", int, d.settle_seconds, _non_negative)
        orphan = t.get("orphan_settle_seconds", int, d.orphan_settle_seconds, _non_negative)
        lookback = t.get("lookback_hours", float, d.lookback_hours, _positive)
        tenant_column = t.get("tenant_column", str, d.tenant_column, _identifier_or_empty)
        start_raw = t.get("start_date", str, "", _start_date)
        page_size = t.get("page_size", int, d.page_size, _between(100, 100_000))
        columns = self.columns(t.table("columns"), flavor)
        values = self.values(t.table("values"))
        t.finish()
        if lookback * 3600 < orphan + settle:
            self.problem(
                "source.lookback_hours",
                f"must cover orphan_settle_seconds + settle_seconds ({orphan + settle} s), "
                "or calls without their originating leg would never be complete (R10)",
            )
        col_tenant = columns.get("tenant", "")
        if col_tenant and tenant_column and col_tenant != tenant_column:
            self.problem(
                "source.columns.tenant",
                f"differs from source.tenant_column ({tenant_column!r}); set one of them",
            )
        if flavor == "calls":
            for needed in ("id", "started_at", "direction", "phone"):
                if needed not in columns:
                    self.problem(f"source.columns.{needed}", "required for flavor 'calls'")
        return SourceSettings(
            url=url,
            table=table,
            flavor=flavor,  # type: ignore[arg-type]
            timezone=tz,
            settle_seconds=settle,
            orphan_settle_seconds=orphan,
            lookback_hours=lookback,
            tenant_column=tenant_column or col_tenant,
            start_date=_parse_local(start_raw) if start_raw else None,
            page_size=page_size,
            columns=MappingProxyType(columns),
            values=values,
        )

    def columns(self, t: _Table, flavor: str) -> dict[str, str]:
        allowed = CALL_COLUMNS if flavor == "calls" else (*LEG_COLUMNS, "tenant")
        columns: dict[str, str] = {}
        for name in list(t.data):
            if name not in allowed:
                continue
            value = t.get(name, str, "", _identifier)
            if value:
                columns[name] = value
        for name in sorted(set(t.data) - set(allowed)):
            t.used.add(name)
            self.problem(t.key(name), f"unknown column name (allowed: {', '.join(allowed)})")
        t.finish()
        return columns

    def values(self, t: _Table) -> ValueSpellings:
        defaults = ValueSpellings()
        spelled: dict[str, tuple[str, ...]] = {}
        for key, attr in VALUE_KEYS.items():
            got = t.get(key, list, list(defaults.spellings(key)), _string_list)
            spelled[attr] = tuple(got)
        t.finish()
        return ValueSpellings(**spelled)

    def pbx(self, t: _Table) -> PbxSettings:
        d = PbxSettings()
        settings = PbxSettings(
            country=t.get("country", str, d.country, _country).upper(),
            extension_pattern=t.get("extension_pattern", str, d.extension_pattern, _regex),
            extension_channel_pattern=t.get(
                "extension_channel_pattern", str, d.extension_channel_pattern, _one_group_regex
            ),
            trunk_channel_pattern=t.get(
                "trunk_channel_pattern", str, d.trunk_channel_pattern, _regex
            ),
            responsible=t.get("responsible", str, d.responsible, _one_of(*RESPONSIBLE)),  # type: ignore[arg-type]
            dial_prefixes=tuple(t.get("dial_prefixes", list, list(d.dial_prefixes), _digit_list)),
            area_code=t.get("area_code", str, d.area_code, _area_code),
            external_id_prefix=t.get("external_id_prefix", str, d.external_id_prefix, _max_len(40)),
            recording_url=t.get("recording_url", str, d.recording_url, _recording_template),
        )
        t.finish()
        return settings

    def sync(self, t: _Table) -> SyncSettings:
        d = SyncSettings()
        settings = SyncSettings(
            batch_size=t.get("batch_size", int, d.batch_size, _between(1, 50)),
            max_in_flight=t.get("max_in_flight", int, d.max_in_flight, _between(1, 32)),
            max_attempts=t.get("max_attempts", int, d.max_attempts, _between(1, 1000)),
            lease_seconds=t.get("lease_seconds", int, d.lease_seconds, _between(10, 3600)),
            upload_budget_seconds=t.get(
                "upload_budget_seconds", float, d.upload_budget_seconds, _between(1, 3600)
            ),
            retry_base_seconds=t.get(
                "retry_base_seconds", int, d.retry_base_seconds, _between(1, 86400)
            ),
            retry_max_seconds=t.get(
                "retry_max_seconds", int, d.retry_max_seconds, _between(1, 7 * 86400)
            ),
            connect_timeout=t.get("connect_timeout", float, d.connect_timeout, _between(0.1, 120)),
            read_timeout=t.get("read_timeout", float, d.read_timeout, _between(0.1, 600)),
            slice_seconds=t.get("slice_seconds", float, d.slice_seconds, _between(0.1, 86400)),
        )
        t.finish()
        if settings.upload_budget_seconds + settings.read_timeout >= settings.lease_seconds:
            self.problem(
                "sync.upload_budget_seconds",
                "plus sync.read_timeout must be shorter than sync.lease_seconds "
                f"({settings.lease_seconds}), or a lease could expire while a batch is in flight",
            )
        return settings

    def daemon(self, t: _Table) -> DaemonSettings:
        d = DaemonSettings()
        settings = DaemonSettings(
            interval=t.get("interval", float, d.interval, _between(1, 86400)),
            customers_interval=t.get(
                "customers_interval", float, d.customers_interval, _between(10, 86400)
            ),
            stop_timeout=t.get("stop_timeout", float, d.stop_timeout, _between(1, 3600)),
            keep_days=t.get("keep_days", int, d.keep_days, _between(1, 3650)),
            jitter=t.get("jitter", float, d.jitter, _between(0, 3600)),
            workers=t.get("workers", int, d.workers, _between(1, 256)),
        )
        t.finish()
        return settings

    def logging(self, t: _Table) -> LoggingSettings:
        d = LoggingSettings()
        settings = LoggingSettings(
            dir=t.get("dir", str, d.dir, _non_empty),
            level=t.get("level", str, d.level, _level).upper(),
            rotation=t.get("rotation", str, d.rotation, _size),
            retention=t.get("retention", str, d.retention, _retention),
        )
        t.finish()
        return settings

    def tenants(
        self,
        root: _Table,
        source: SourceSettings,
        defaults: Mapping[str, Any] | None = None,
        directory: bool = False,
    ) -> tuple[TenantSettings, ...]:
        root.used.add("tenants")
        raw = root.data.get("tenants")
        required = "at least one [[tenants]] table is required"  # or a [tenants_directory]
        if raw is None:
            if not directory:
                self.problem("tenants", required)
            return ()
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            self.problem("tenants", "must be an array of tables ([[tenants]])")
            return ()
        if not raw and not directory:
            self.problem("tenants", required)
        tenants = [
            self.tenant(_Table(self, f"tenants[{i}]", with_defaults(item, defaults or {})))
            for i, item in enumerate(raw)
        ]
        names = [t.name for t in tenants if t is not None]
        for i, tenant in enumerate(tenants):
            if tenant is None:
                continue
            if names.count(tenant.name) > 1:
                self.problem(f"tenants[{i}].name", f"duplicate tenant name {tenant.name!r}")
            if len(raw) > 1 and tenant.match is None:
                self.problem(f"tenants[{i}].match", "required when there are several tenants")
            if tenant.match is not None and not source.tenant_column:
                self.problem(
                    f"tenants[{i}].match", "needs source.tenant_column to say which column to match"
                )
        return tuple(t for t in tenants if t is not None)

    def tenant(self, t: _Table, key: Secret | None = None) -> TenantSettings | None:
        """One tenant; ``key`` given (a directory row's key) replaces the api_key_* keys."""
        before = len(self.problems)
        d = TenantSettings(name="", url="", api_key=Secret(""))
        name = t.get("name", str, "", _tenant_name)
        if "name" not in t.data:
            self.problem(t.key("name"), "required")
        url = t.get("url", str, "", _base_url)
        if "url" not in t.data:
            self.problem(t.key("url"), "required")
        if key is None:
            key = self.api_key(t)
        else:
            t.used.update(("api_key_env", "api_key_file", "api_key"))
        match = t.get("match", str, "", _non_empty) if "match" in t.data else None
        extensions = self.extensions(t.table("extensions"))
        external_phones = self.external_phones(t.table("external_phones"))
        tenant = TenantSettings(
            name=name,
            url=url.rstrip("/"),
            api_key=key,
            match=match,
            integration_code=t.get("integration_code", str, d.integration_code, _code),
            integration_name=t.get("integration_name", str, d.integration_name, _non_empty),
            logo_url=t.get("logo_url", str, d.logo_url, _svg_url),
            make_call_url=t.get("make_call_url", str, d.make_call_url, _optional_url),
            change_user_status_url=t.get(
                "change_user_status_url", str, d.change_user_status_url, _optional_url
            ),
            timezone=t.get("timezone", str, d.timezone, _zone),
            site=t.get("site", str, d.site, None),
            create_customers=t.get("create_customers", bool, d.create_customers),
            rate_limit=t.get("rate_limit", float, d.rate_limit, _between(0.1, 40)),
            extensions=MappingProxyType(extensions),
            external_phones=MappingProxyType(external_phones),
        )
        t.finish()
        return tenant if len(self.problems) == before else None

    def api_key(self, t: _Table) -> Secret:
        given = [k for k in ("api_key_env", "api_key_file", "api_key") if k in t.data]
        t.used.update(("api_key_env", "api_key_file", "api_key"))
        if len(given) != 1:
            reason = "set exactly one of api_key_env, api_key_file, api_key"
            self.problem(t.key("api_key_env"), reason if given else f"required: {reason}")
            return Secret("")
        which = given[0]
        value = t.data[which]
        if not isinstance(value, str) or not value:
            self.problem(t.key(which), "expected a non-empty string")
            return Secret("")
        if which == "api_key_env":
            key = self.environ.get(value, "")
            if not key:
                self.problem(t.key(which), f"environment variable {value} is not set or empty")
        elif which == "api_key_file":
            key = self.key_file(t.key(which), Path(value))
        else:
            key = value
            if _group_or_world_readable(self.path):
                self.problem(
                    t.key(which),
                    "a literal key needs a config file readable by its owner only "
                    f"(chmod 600 {self.path}); or use api_key_env / api_key_file",
                )
        return Secret(key.strip())

    def key_file(self, key: str, path: Path) -> str:
        # systemd LoadCredential= files live under $CREDENTIALS_DIRECTORY.
        if not path.is_absolute() and self.environ.get("CREDENTIALS_DIRECTORY"):
            path = Path(self.environ["CREDENTIALS_DIRECTORY"]) / path
        try:
            content = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            self.problem(key, f"cannot read {path}: {exc.strerror}")
            return ""
        except ValueError:  # a NUL in the path, or a file that is not UTF-8 text
            self.problem(key, f"{path!r} is not a readable UTF-8 text file")
            return ""
        if not content:
            self.problem(key, f"{path} is empty")
        return content

    def extensions(self, t: _Table) -> dict[str, int]:
        result: dict[str, int] = {}
        for ext in list(t.data):
            user_id = t.get(ext, int, 0, _positive)
            if user_id:
                result[ext] = user_id
        t.finish()
        return result

    def external_phones(self, t: _Table) -> dict[str, str]:
        result: dict[str, str] = {}
        for did in list(t.data):
            site = t.get(did, str, "", _non_empty)
            if site:
                result[did] = site
        t.finish()
        return result


def with_defaults(item: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A tenant's keys over ``[tenant_defaults]``; a tenant naming its own key source
    (api_key_env, api_key_file, api_key) does not inherit another one."""
    keys = ("api_key_env", "api_key_file", "api_key")
    own_key = any(k in item for k in keys)
    base = {k: v for k, v in defaults.items() if not (own_key and k in keys)}
    return {**base, **item}


def tenant_from_row(
    path: Path,
    where: str,
    data: Mapping[str, Any],
    key: Secret | None,
    defaults: Mapping[str, Any],
    environ: Mapping[str, str],
) -> tuple[TenantSettings | None, list[str]]:
    """A directory row checked by the very code that checks ``[[tenants]]``; the problems
    read ``file: where.key: reason``. ``key`` None: the row names its key source itself."""
    parser = _Parser(path, environ)
    merged = with_defaults(data, defaults)
    if key is not None:
        merged = {k: v for k, v in merged.items() if k not in ("api_key_env", "api_key_file")}
    tenant = parser.tenant(_Table(parser, where, merged), key)
    return tenant, parser.problems


def _fernet_key(value: str) -> bool:
    import base64
    import binascii

    try:
        return len(base64.urlsafe_b64decode(value.encode("ascii"))) == 32
    except (binascii.Error, ValueError):
        return False


def _split_listen(value: str) -> tuple[str, int] | None:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def _listen(value: str) -> str | None:
    return None if _split_listen(value) else "expected HOST:PORT, e.g. 127.0.0.1:8019"


def _public_url(value: str) -> str | None:
    reason = _http_url(value)
    if reason:
        return "not a URL (e.g. https://pbx.example.com/retailcrm)"
    parts = _split(value)
    if parts is not None and (parts.query or parts.fragment):
        return "must not carry a query or fragment"
    return None


def _host(value: str) -> str | None:
    ok = re.fullmatch(r"[A-Za-z0-9.:_-]{1,253}", value)
    return None if ok else "not a host name or address"


def _ami_value(value: str) -> str | None:
    """A value sent as an AMI header: one line, no colon tricks."""
    ok = re.fullmatch(r"[A-Za-z0-9_.@/+-]{1,80}", value)
    return None if ok else "letters, digits and _ . @ / + - only"


def _header_name(value: str) -> str | None:
    ok = not value or re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", value)
    return None if ok else "not an AMI header name"


def _statuses(value: list[Any]) -> str | None:
    allowed = ("busy", "dinner", "break")
    ok = all(isinstance(v, str) and v in allowed for v in value)
    return None if ok else f"expected a list of user statuses ({', '.join(allowed)})"


def _regex_list(value: list[Any]) -> str | None:
    for item in value:
        if not isinstance(item, str):
            return "expected a list of regular expressions"
        reason = _regex(item)
        if reason:
            return f"{item!r}: {reason}"
    return None


def _template(*allowed: str, required: str = "") -> Callable[[str], str | None]:
    """A ``{placeholder}`` template: known placeholders only, one line."""

    def check(value: str) -> str | None:
        if not value or any(c in value for c in "\r\n"):
            return "must be one non-empty line"
        unknown = set(re.findall(r"{([^{}]*)}", value)) - set(allowed)
        if unknown:
            return (
                f"unknown placeholder {{{sorted(unknown)[0]}}} "
                f"(allowed: {', '.join('{' + a + '}' for a in allowed)})"
            )
        if required and "{" + required + "}" not in value:
            return f"must contain {{{required}}}"
        return None

    return check


def _identifier(value: str) -> str | None:
    ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?", value)
    return None if ok else "not a plain table or column name"


def _identifier_or_empty(value: str) -> str | None:
    return _identifier(value) if value else None


def _tenant_name(value: str) -> str | None:
    ok = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value)
    return None if ok else "letters, digits, '.', '_' or '-', at most 64"


def _code(value: str) -> str | None:
    ok = re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value)
    return None if ok else "letters, digits, '_' or '-', at most 64"


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _max_len(n: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if len(value) <= n else f"at most {n} characters"

    return check


def _optional_url(value: str) -> str | None:
    return _http_url(value) if value else None


def _svg_url(value: str) -> str | None:
    if not value:
        return None
    reason = _http_url(value)
    if reason:
        return reason
    parts = _split(value)
    return None if parts and parts.path.lower().endswith(".svg") else "must link to an SVG file"


def _level(value: str) -> str | None:
    return None if value.upper() in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}"


def _one_group_regex(value: str) -> str | None:
    if not value:
        return None
    try:
        compiled = re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None if compiled.groups == 1 else "needs exactly one group capturing the extension"


def _string_list(value: list[Any]) -> str | None:
    return None if all(isinstance(v, str) for v in value) else "expected a list of strings"


def _digit_list(value: list[Any]) -> str | None:
    ok = all(isinstance(v, str) and v.isdigit() for v in value)
    return None if ok else 'expected a list of digit strings, e.g. ["9"]'


def _area_code(value: str) -> str | None:
    ok = not value or re.fullmatch(r"[0-9]{1,6}", value)
    return None if ok else 'digits only, at most 6, e.g. "3012" (no + and no country code)'


def _group_or_world_readable(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return True
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))
