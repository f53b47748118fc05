"""``check``: is everything in place for the daemon? One line per check, ✓ / ✗ / ! and a fix.

Checks run in dependency order and a failure skips only what depends on it (an unreachable CRM
skips that tenant's key and module checks, not the databases). Scopes (spec §2; docs/
operator-guide.md): ``telephony_write``, ``customer_read`` (the customer map job) and
``integration_read`` (this check of the module) are required, ``customer_write`` too with
``create_customers``; ``integration_write`` (register), ``user_read`` (extension users) and
``reference_read`` (``site``) only warn, since the daemon runs without them. Exit 1 when any
check fails; warnings alone exit 0.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from sync import config, db, logs
from sync.ami.probe import NEEDED, probe_sync
from sync.commands.common import _safe_url, _short
from sync.config import Settings, TenantSettings
from sync.crm import AccountNotFoundError, AuthError, CRMError, RetailCRMClient, TransportError
from sync.crm.factory import one_off_client
from sync.crm.module import FAIL, OK, WARN, stored_codes
from sync.crm.types import Credentials
from sync.sources import Source, SourceError, open_source
from sync.sources.indexes import missing_indexes

KEY_HINT = "RetailCRM: Settings → Integration → API access keys"


@dataclass
class Report:
    """Prints each line as soon as it is known: a slow CRM shows where the time goes."""

    failed: bool = False

    def add(self, mark: str, text: str, hint: str = "") -> None:
        print(f"{mark} {text}" + (f" → {hint}" if hint and mark != OK else ""), flush=True)
        self.failed = self.failed or mark == FAIL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = Report()
    path = config.resolve_path(getattr(args, "config", None))
    try:
        settings = config.load(path)
    except config.ConfigError as exc:
        for problem in exc.problems:
            report.add(FAIL, f"configuration: {problem}", "fix it; docs/configuration.md")
        return 1
    # Only the check lines on the terminal: the client's retry warnings would interleave them.
    logs.setup(args.log_level or "CRITICAL", None, settings.secrets())
    names = ", ".join(t.name for t in settings.tenants)
    count = len(settings.tenants)
    report.add(OK, f"configuration: {path} ({count} tenant{'s' if count > 1 else ''}: {names})")
    check_own_database(settings, report)
    check_source(settings, report)
    check_live_bridge(settings, report)
    for index, tenant in enumerate(settings.tenants):
        with one_off_client(settings, tenant) as client:
            TenantChecks(index, tenant, client, report).run()
    return 1 if report.failed else 0


# -- databases ---------------------------------------------------------------------------------


def check_own_database(settings: Settings, report: Report) -> None:
    where = _safe_url(settings.database.url)
    engine = db.make_engine(settings.database.url, poolclass=sa.pool.NullPool)
    try:
        current, head = db.revisions(engine)
    except SQLAlchemyError as exc:
        report.add(
            FAIL,
            f"own database {where}: unreachable: {_short(exc)}",
            "check [database] url, that the server runs and the user may connect",
        )
        return
    finally:
        engine.dispose()
    if current != head:
        report.add(
            FAIL,
            f"own database {where}: at revision {current or 'none'}, expected {head}",
            "run `retailcrm-sync db upgrade`",
        )
    else:
        report.add(OK, f"own database {where}: reachable, migrated (revision {head})")


def check_source(settings: Settings, report: Report) -> None:
    src = settings.source
    where = _safe_url(src.url)
    engine = db.make_engine(src.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        report.add(OK, f"source database {where}: reachable")
        try:
            source = open_source(src, engine)
        except SourceError as exc:
            report.add(
                FAIL,
                f"source table: {exc}",
                "check [source] table, flavor and [source.columns] (docs/configuration.md)",
            )
            return
        report.add(
            OK,
            f"source table {source.layout.name}: flavor {src.flavor}, "
            f"{source.layout.shape} shape, {len(source.layout.columns)} columns mapped",
        )
        check_indexes(source, report)
    except SQLAlchemyError as exc:
        report.add(
            FAIL,
            f"source database {where}: unreachable: {_short(exc)}",
            "check [source] url (default: [database] url) and the reader's rights",
        )
    finally:
        engine.dispose()


def check_indexes(source: Source, report: Report) -> None:
    table = source.layout.name
    try:
        missing = missing_indexes(source)
    except SQLAlchemyError as exc:
        report.add(WARN, f"source indexes on {table}: cannot inspect: {_short(exc)}")
        return
    if missing:
        wanted = ", ".join(f"({', '.join(spec.columns)})" for spec in missing)
        report.add(
            WARN,
            f"source indexes on {table}: missing {wanted}; every cycle scans the table",
            "`retailcrm-sync source indexes` prints the statements, `--apply` runs them",
        )
    else:
        report.add(OK, f"source indexes on {table}: present")


# -- the live bridge ([serve], [ami]) ----------------------------------------------------------


def public_url_problem(url: str) -> tuple[str, str] | None:
    """(mark, reason) when ``public_url`` will not work well for RetailCRM's callbacks."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in ("localhost", "127.0.0.1", "::1") or host.endswith(".local"):
        return FAIL, "points at this machine; RetailCRM (in the cloud) cannot reach it"
    if parts.scheme != "https":
        return WARN, "not https: clientId and tokens would cross the internet in clear text"
    return None


def check_live_bridge(settings: Settings, report: Report) -> None:
    serve = settings.serve
    if serve is None:
        return
    problem = public_url_problem(serve.public_url)
    if problem is None:
        report.add(OK, f"serve: public_url {serve.public_url}: https, reachable shape")
    else:
        report.add(
            problem[0],
            f"serve: public_url {serve.public_url}: {problem[1]}",
            "put a TLS reverse proxy in front of [serve] listen (docs/operator-guide.md)",
        )
    ami = settings.ami
    if ami is None:
        return
    where = f"AMI {ami.username}@{ami.host}:{ami.port}"
    result = probe_sync(ami.host, ami.port, ami.username, ami.secret.reveal(), ami.connect_timeout)
    if not result.ok:
        report.add(
            FAIL,
            f"{where}: {result.reason}",
            "check [ami] host/port/username/secret and manager.conf (docs/operator-guide.md)",
        )
        return
    report.add(OK, f"{where}: login accepted")
    needs = dict(NEEDED)
    if settings.originate.method != "ami":
        needs.pop("Originate")
    missing = [f"{action} ({why})" for action, why in needs.items() if action not in result.actions]
    if missing:
        mark = FAIL if "Originate" in " ".join(missing) else WARN
        report.add(
            mark,
            f"{where}: not permitted: {', '.join(missing)}",
            "add the write classes to the user in manager.conf and `manager reload`",
        )
    else:
        report.add(OK, f"{where}: may run {', '.join(needs)}")


# -- one tenant's CRM --------------------------------------------------------------------------


def required_scopes(tenant: TenantSettings) -> list[str]:
    scopes = ["telephony_write", "customer_read", "integration_read"]
    return scopes + (["customer_write"] if tenant.create_customers else [])


def recommended_scopes(tenant: TenantSettings) -> dict[str, str]:
    """Scope -> what lacks without it; warnings only."""
    wanted = {
        "integration_write": "`retailcrm-sync register` cannot update the module",
        "user_read": "extension users cannot be verified",
        "order_read": "`report` attributes no orders (retailcrm_orders stays empty)",
        "reference_read": "order status groups are unknown, so `report` gets no orders",
    }
    if tenant.site:
        wanted["reference_read"] = "tenants[].site cannot be verified; " + wanted["reference_read"]
    return wanted


class TenantChecks:
    """One tenant's CRM, from reachability to extensions; stops at the first blocking failure."""

    def __init__(
        self, index: int, tenant: TenantSettings, client: RetailCRMClient, report: Report
    ) -> None:
        self.key = f"tenants[{index}]"
        self.tenant = tenant
        self.client = client
        self.report = report
        self.who = f"tenant {tenant.name}"

    def add(self, mark: str, text: str, hint: str = "") -> None:
        self.report.add(mark, f"{self.who}: {text}", hint)

    def run(self) -> None:
        credentials = self.credentials()
        if credentials is None:
            return
        scopes = set(credentials.scopes)
        self.scopes(scopes)
        self.api_version()
        if "integration_read" in scopes:
            self.module()
        if "user_read" in scopes:
            self.extensions()
        self.site(credentials, scopes)

    def credentials(self) -> Credentials | None:
        url = self.tenant.url
        try:
            credentials = self.client.credentials()
        except TransportError as exc:
            self.add(
                FAIL,
                f"CRM {url}: unreachable: {exc.error_msg}",
                f"check {self.key}.url, DNS, the firewall and any proxy",
            )
            return None
        except AccountNotFoundError:
            self.add(FAIL, f"CRM {url}: no such RetailCRM account", f"check {self.key}.url")
            return None
        except AuthError as exc:
            self.add(OK, f"CRM {url}: reachable")
            self.add(
                FAIL,
                f"API key: rejected ({exc.error_msg})",
                f"create a key in {KEY_HINT} and point {self.key}.api_key_env/api_key_file at it",
            )
            return None
        except CRMError as exc:
            self.add(FAIL, f"CRM {url}: {exc}", f"check {self.key}.url is the account's address")
            return None
        self.add(OK, f"CRM {url}: reachable")
        self.add(OK, f"API key: valid ({credentials.site_access or 'access'})")
        return credentials

    def scopes(self, scopes: set[str]) -> None:
        missing = [s for s in required_scopes(self.tenant) if s not in scopes]
        if missing:
            self.add(
                FAIL, f"scopes: missing {', '.join(missing)}", f"add them to the key in {KEY_HINT}"
            )
        else:
            self.add(OK, f"scopes: {', '.join(required_scopes(self.tenant))} present")
        for scope, effect in recommended_scopes(self.tenant).items():
            if scope not in scopes:
                self.add(WARN, f"scope {scope} missing: {effect}", f"add it in {KEY_HINT}")

    def api_version(self) -> None:
        try:
            versions = self.client.api_versions()
        except CRMError as exc:
            self.add(FAIL, f"API versions: {exc}")
            return
        if any(v.split(".")[0] == "5" for v in versions):
            self.add(OK, "API v5 available")
        else:
            self.add(
                FAIL,
                f"API v5 not offered (versions: {', '.join(versions) or 'none'})",
                "ask RetailCRM support to enable API v5 for the account",
            )

    def module(self) -> None:
        code = self.tenant.integration_code
        try:
            module = self.client.integration_module(code)
        except CRMError as exc:
            self.add(FAIL, f"integration module {code}: {exc}")
            return
        register = "run `retailcrm-sync register`"
        if not self.tenant.logo_url:
            register = f"set {self.key}.logo_url and run `retailcrm-sync register`"
        if module is None:
            self.add(FAIL, f"integration module {code}: not registered", register)
        elif module.get("freeze"):
            self.add(
                FAIL,
                f"integration module {code}: frozen by RetailCRM (calls are refused)",
                "settle the account's subscription in RetailCRM, then check again",
            )
        elif module.get("active") is not True:
            self.add(FAIL, f"integration module {code}: inactive", register)
        else:
            self.add(OK, f"integration module {code}: registered and active")
            wanted = {(str(u), e) for e, u in self.tenant.extensions.items()}
            if stored_codes(module) != wanted:
                self.add(
                    WARN,
                    f"integration module {code}: its extensions differ from {self.key}.extensions",
                    "run `retailcrm-sync register`",
                )

    def extensions(self) -> None:
        extensions = self.tenant.extensions
        if not extensions:
            self.add(
                WARN,
                "extensions: none configured; calls reach managers only through the "
                "extension in each user's RetailCRM profile",
                f'map them in [{self.key}.extensions] ("101" = user id)',
            )
            return
        try:
            users = {int(u["id"]): u for u in self.client.all_users()}
        except CRMError as exc:
            self.add(FAIL, f"extensions: cannot list users: {exc}")
            return
        unknown = [f"{e} → {u}" for e, u in sorted(extensions.items()) if u not in users]
        inactive = [
            f"{e} → {u}"
            for e, u in sorted(extensions.items())
            if u in users and users[u].get("active") is False
        ]
        if unknown:
            self.add(
                FAIL,
                f"extensions: user ids that do not exist: {', '.join(unknown)}",
                f"fix [{self.key}.extensions] (Settings → Users shows each user's id)",
            )
        else:
            self.add(OK, f"extensions: all {len(extensions)} user ids exist")
        if inactive:
            self.add(WARN, f"extensions: inactive users: {', '.join(inactive)}")

    def site(self, credentials: Credentials, scopes: set[str]) -> None:
        site = self.tenant.site
        selective = credentials.site_access == "access_selective"
        available = list(credentials.sites_available)
        if not site:
            if selective and len(available) > 1:
                self.add(
                    WARN,
                    f"site: the key is limited to shops {', '.join(available)}",
                    f"set {self.key}.site to the shop the calls belong to",
                )
            return
        if selective and site not in available:
            self.add(
                FAIL,
                f"site {site!r}: the key may not use it (allowed: {', '.join(available)})",
                f"fix {self.key}.site or widen the key's shops in {KEY_HINT}",
            )
            return
        if "reference_read" not in scopes:
            return
        try:
            sites = self.client.sites()
        except CRMError as exc:
            self.add(FAIL, f"site {site!r}: cannot list shops: {exc}")
            return
        if site in sites:
            self.add(OK, f"site {site!r}: exists")
        else:
            self.add(
                FAIL,
                f"site {site!r}: no such shop (shops: {', '.join(sorted(sites)) or 'none'})",
                f"fix {self.key}.site (Settings → Shops shows the codes)",
            )
