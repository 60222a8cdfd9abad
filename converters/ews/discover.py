"""Where a mailbox's EWS endpoint is: the URL given, SOAP autodiscover, or the usual path.

- `ews://USER@HOST/some/path`: exactly that URL.
- `ews://USER@HOST[:PORT]`: ask HOST's autodiscover service
  (`/autodiscover/autodiscover.svc`, GetUserSettings) for the mailbox's
  ExternalEwsUrl (else InternalEwsUrl), following RedirectUrl/RedirectAddress
  answers (https only, at most MAX_HOPS). If HOST has no autodiscover service
  (connection refused, or no 401 to an anonymous POST, or not an autodiscover
  answer), `https://HOST/EWS/Exchange.asmx` with a notice on stderr. A TLS
  failure is an error, and so is an autodiscover that does not know the mailbox.
- `ews://USER@autodiscover` (the literal host name `autodiscover`): discovery
  from the mailbox's domain as Outlook does it: https://DOMAIN/…,
  https://autodiscover.DOMAIN/…, the redirect of http://autodiscover.DOMAIN/…,
  then DNS SRV `_autodiscover._tcp.DOMAIN`.

The SOAP itself is exchangelib's (`AutodiscoverProtocol.get_user_settings`),
asked of one URL at a time. exchangelib's own `discover()` is not used: it
writes domain -> endpoint into a shelve file in the temp directory, builds its
sessions without our CA pinning, resolves names with dnspython only (not
/etc/hosts) and prefers the *highest* SRV priority. Nothing here is cached.

Pure decisions (URLs, redirect checks, SRV order, the redirect walk) are apart
from the I/O (`Discovery`). Credentials are made (through `CredsFor`, so the
secret is read) only when an autodiscover service has asked for them with a
401, and are handed on for EWS when it offers the same schemes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import dns.exception
import dns.resolver
import requests
from exchangelib import Configuration, FailFast
from exchangelib import errors as xerr
from exchangelib.autodiscover import AutodiscoverProtocol

from pstkit.converters.ews.wire import anonymous_post, reason, verify_with
from pstkit.errors import AuthError, ConnectError, ConnectorError, TLSError, TransientError
from pstkit.location import Location
from pstkit.options import ConnectOptions

log = logging.getLogger("pstkit.ews")  # the CLI shows "pstkit" warnings on stderr

DOMAIN_HOST = "autodiscover"  # ews://USER@autodiscover: discover from the mailbox's domain
SVC_PATH = "/autodiscover/autodiscover.svc"
EWS_PATH = "/EWS/Exchange.asmx"
MAX_HOPS = 10  # redirects followed, as exchangelib and Outlook bound them
SETTINGS = ["external_ews_url", "internal_ews_url", "auto_discover_smtp_address"]

Creds = tuple[Any, str]  # exchangelib credentials object, auth type
CredsFor = Callable[[str], Creds]  # credentials for a server offering this WWW-Authenticate


@dataclass(frozen=True)
class Endpoint:
    url: str
    mailbox: str  # the primary address when autodiscover named one, else as given
    discovered: bool  # False: given in the location, or the fallback guess
    offered: str = ""  # WWW-Authenticate of the autodiscover service that answered
    creds: Creds | None = None  # made for that service; reusable when EWS offers the same


@dataclass(frozen=True)
class Answer:
    """One GetUserSettings answer for one mailbox."""

    code: str  # NoError, InvalidUser, RedirectAddress, RedirectUrl, or another ErrorCode
    message: str = ""
    target: str = ""  # the redirect's address or URL
    ews_url: str = ""
    smtp: str = ""  # AutoDiscoverSMTPAddress: the mailbox's primary address


class NotThere(ConnectError):
    """no autodiscover service at {}: {}"""


# --- pure decisions ---------------------------------------------------------------


def given_url(location: Location) -> str | None:
    """The EWS URL the location names, or None when it leaves it to discovery."""
    if location.path in ("", "/"):
        return None
    return f"{_origin(location)}{location.path}"


def fallback_url(location: Location) -> str:
    return f"{_origin(location)}{EWS_PATH}"


def host_service_url(location: Location) -> str:
    return f"{_origin(location)}{SVC_PATH}"


def is_domain_discovery(location: Location) -> bool:
    return location.host.lower() == DOMAIN_HOST and location.path in ("", "/")


def domain_service_urls(domain: str) -> list[str]:
    """Steps 1 and 2 of the autodiscover protocol."""
    return [f"https://{domain}{SVC_PATH}", f"https://autodiscover.{domain}{SVC_PATH}"]


def http_redirect_probe_url(domain: str) -> str:
    """Step 3: plain HTTP, unauthenticated; only its redirect is used."""
    return f"http://autodiscover.{domain}{SVC_PATH}"


def srv_service_urls(records: Iterable[tuple[int, int, int, str]]) -> list[str]:
    """Step 4: (priority, weight, port, target) -> service URLs, best first
    (RFC 2782: lowest priority, then highest weight)."""
    out = []
    for _, _, port, target in sorted(records, key=lambda r: (r[0], -r[1])):
        host = target.rstrip(".")
        if host:
            out.append(f"https://{host}{'' if port == 443 else f':{port}'}{SVC_PATH}")
    return list(dict.fromkeys(out))


def redirect_refusal(url: str) -> str | None:
    """Why a redirect target must not be followed, or None. Credentials go
    there, so only https URLs."""
    if not url.lower().startswith("https://"):
        return f"refusing to follow a redirect to a non-https URL {url}"
    return None


def ews_url_refusal(ews_url: str, service_url: str) -> str | None:
    """An http EWS URL only from an http autodiscover (a test setup chosen with
    ?scheme=http): the password must not go out in clear because a server said so."""
    if not ews_url:
        return "it named no EWS URL (neither ExternalEwsUrl nor InternalEwsUrl)"
    if ews_url.lower().startswith("https://"):
        return None
    if ews_url.lower().startswith("http://") and service_url.lower().startswith("http://"):
        return None
    return f"refusing its EWS URL {ews_url}: not https"


def follow(ask: Callable[[str, str], Answer], url: str, mailbox: str) -> tuple[str, str]:
    """Walk GetUserSettings redirects from `url`; returns (EWS URL, the mailbox's address
    there: AutoDiscoverSMTPAddress, else the address last asked for)."""
    seen: set[tuple[str, str]] = set()
    for hop in range(MAX_HOPS + 1):
        if (url.lower(), mailbox.lower()) in seen:
            raise ConnectorError(f"autodiscover redirects in a circle at {url} for {mailbox}")
        seen.add((url.lower(), mailbox.lower()))
        try:
            answer = ask(url, mailbox)
        except NotThere as e:
            if hop == 0:  # only the first service's absence means "no autodiscover here"
                raise
            raise ConnectError(url, f"autodiscover redirected here, but {e.args[-1]}") from e
        if answer.code == "NoError":
            refusal = ews_url_refusal(answer.ews_url, url)
            if refusal:
                raise ConnectorError(f"autodiscover at {url} answered for {mailbox}, but {refusal}")
            return answer.ews_url, answer.smtp or mailbox
        if answer.code == "RedirectUrl":
            refusal = redirect_refusal(answer.target)
            if refusal:
                raise ConnectorError(f"autodiscover at {url}: {refusal}")
            url = answer.target
        elif answer.code == "RedirectAddress" and answer.target:
            mailbox = answer.target
        elif answer.code == "InvalidUser":
            raise ConnectorError(
                f"autodiscover at {url} does not know the mailbox {mailbox}",
                hint="check the address (--mailbox, else the user name), or name the EWS URL: "
                "ews://USER@HOST/EWS/Exchange.asmx",
            )
        else:
            raise ConnectorError(f"autodiscover at {url} answered {answer.code}: {answer.message}")
    raise ConnectorError(f"autodiscover for {mailbox}: more than {MAX_HOPS} redirects")


def answer_of(response: Any) -> Answer:
    """exchangelib's UserResponse -> Answer (it keeps ErrorCode only for errors)."""
    if response.redirect_url:
        return Answer("RedirectUrl", target=response.redirect_url)
    if response.redirect_address:
        return Answer("RedirectAddress", target=response.redirect_address)
    if response.error_code not in (None, "NoError"):
        return Answer(response.error_code, response.error_message or "")
    settings = response.user_settings or {}
    url = settings.get("external_ews_url") or settings.get("internal_ews_url") or ""
    return Answer("NoError", ews_url=url, smtp=settings.get("auto_discover_smtp_address") or "")


def for_ews(
    found: Endpoint, probe: Callable[[str], str], creds_for: CredsFor
) -> tuple[str, Any, str]:
    """(URL, credentials, auth type) for EWS at `found`. `probe` gives the schemes EWS
    offers; the autodiscover credentials are reused when they are the same (no second
    prompt). Errors at a discovered URL name it: the location does not."""
    try:
        offered = probe(found.url)
    except ConnectError as e:
        if not found.discovered or len(e.args) != 2:
            raise
        raise type(e)(f"{found.url} (named by autodiscover)", e.args[1]) from e
    if found.creds is not None and offered == found.offered:
        return found.url, *found.creds
    return found.url, *creds_for(offered)


def _origin(location: Location) -> str:
    scheme = location.params.get("scheme", "https")
    port = f":{location.port}" if location.port and location.port != 443 else ""
    return f"{scheme}://{location.host}{port}"


# --- I/O ------------------------------------------------------------------------------


class Discovery:
    """Finds the EWS endpoint for `mailbox` as `location` asks (see the module doc)."""

    def __init__(
        self, location: Location, options: ConnectOptions, mailbox: str, creds_for: CredsFor
    ) -> None:
        self._location = location
        self._mailbox = mailbox
        self._creds_for = creds_for
        self._timeout = options.timeout
        self._verify: bool | str = True
        if options.insecure or options.ca_file:
            self._verify = False if options.insecure else str(options.ca_file)
        self._offered: str | None = None
        self._creds: Creds | None = None

    def endpoint(self) -> Endpoint:
        url = given_url(self._location)
        if url is not None:
            return Endpoint(url, self._mailbox, discovered=False)
        found = self._by_domain() if is_domain_discovery(self._location) else self._by_host()
        if found is None:
            return Endpoint(fallback_url(self._location), self._mailbox, discovered=False)
        url, mailbox = found
        log.info("autodiscover: EWS for %s is at %s (as %s)", self._mailbox, url, mailbox)
        return Endpoint(url, mailbox, True, self._offered or "", self._creds)

    def _by_host(self) -> tuple[str, str] | None:
        start = host_service_url(self._location)
        try:
            return follow(self._ask, start, self._mailbox)
        except NotThere as e:
            guess = fallback_url(self._location)
            log.warning("%s; trying %s", e.message, guess)
            return None

    def _by_domain(self) -> tuple[str, str]:
        domain = self._mailbox.rpartition("@")[2]
        tried: list[str] = []
        tls_failed = False
        for candidate in self._domain_candidates(domain, tried):
            try:
                return follow(self._ask, candidate, self._mailbox)
            except TLSError as e:
                tls_failed = True
                tried.append(f"{candidate} ({e.args[-1]})")
            except NotThere as e:
                tried.append(f"{candidate} ({e.args[-1]})")
        error = TLSError if tls_failed else ConnectError
        raise error(f"autodiscover for {domain}", "nothing answered; tried " + "; ".join(tried))

    def _domain_candidates(self, domain: str, tried: list[str]) -> Iterable[str]:
        """Service URLs in protocol order, each looked up only when the one before failed."""
        yield from domain_service_urls(domain)
        redirected = self._http_redirect(http_redirect_probe_url(domain))
        if redirected is None:
            tried.append(f"{http_redirect_probe_url(domain)} (no https redirect)")
        else:
            yield redirected
        srv = self._srv(domain)
        if not srv:
            tried.append(f"DNS SRV _autodiscover._tcp.{domain} (no record)")
        yield from srv

    def _http_redirect(self, url: str) -> str | None:
        try:
            r = requests.get(url, timeout=self._timeout, allow_redirects=False)
        except requests.exceptions.RequestException:
            return None
        target = r.headers.get("Location", "") if r.status_code in (301, 302, 307, 308) else ""
        return target if target and redirect_refusal(target) is None else None

    def _srv(self, domain: str) -> list[str]:
        try:
            answers = dns.resolver.resolve(
                f"_autodiscover._tcp.{domain}", "SRV", lifetime=min(self._timeout, 10.0)
            )
        except dns.exception.DNSException:
            return []
        return srv_service_urls(
            (int(r.priority), int(r.weight), int(r.port), str(r.target)) for r in answers
        )

    # --- one autodiscover service ---------------------------------------------------

    def _ask(self, url: str, mailbox: str) -> Answer:
        """One GetUserSettings at `url`; NotThere when no autodiscover service answers."""
        offered = self._probe(url)
        if isinstance(offered, Answer):
            return offered
        credentials, auth_type = self._credentials(offered)
        protocol = AutodiscoverProtocol(
            config=Configuration(
                service_endpoint=url,
                credentials=credentials,
                auth_type=auth_type,
                retry_policy=FailFast(),
            )
        )
        protocol.TIMEOUT = self._timeout
        if self._verify is not True:
            verify_with(protocol, self._verify)
        try:
            return answer_of(protocol.get_user_settings(user=mailbox, settings=SETTINGS))
        except xerr.RedirectError as e:  # an HTTP redirect of the authenticated POST
            return Answer("RedirectUrl", target=str(e.url))
        except (xerr.EWSError, ValueError, SyntaxError, requests.RequestException) as e:
            raise _translated(url, e) from e
        finally:
            protocol.close()

    def _credentials(self, offered: str) -> Creds:
        """Made for the first service that asks, again only if another offers other schemes
        (that may read the secret twice, e.g. prompt again)."""
        if self._creds is None or offered != self._offered:
            self._offered, self._creds = offered, self._creds_for(offered)
        return self._creds

    def _probe(self, url: str) -> str | Answer:
        """One unauthenticated POST. Exchange's autodiscover.svc answers 401 with the auth
        schemes it offers (returned), or redirects (a RedirectUrl); anything else, such
        as a web site's 404, 405 or 200, is no autodiscover service."""
        try:
            r = anonymous_post(url, self._verify, self._timeout)
        except requests.exceptions.SSLError as e:
            raise TLSError(url, reason(e)) from e
        except requests.exceptions.RequestException as e:
            raise NotThere(url, reason(e)) from e
        if r.status_code in (301, 302, 307, 308) and r.headers.get("Location"):
            return Answer("RedirectUrl", target=urljoin(url, r.headers["Location"]))
        if r.status_code != 401:
            raise NotThere(url, f"HTTP {r.status_code}")
        return r.headers.get("WWW-Authenticate", "")


def _translated(url: str, e: Exception) -> ConnectorError:
    """exchangelib's error from one GetUserSettings -> pstkit's."""
    if isinstance(e, xerr.UnauthorizedError):
        return AuthError(url, "the autodiscover service refused the credentials (HTTP 401)")
    if isinstance(e, xerr.ErrorServerBusy | xerr.ErrorInternalServerTransientError):
        return TransientError(url, f"autodiscover busy ({type(e).__name__})")
    if isinstance(e, xerr.TransportError) and "certificate verify failed" in str(e):
        return TLSError(url, reason(e))
    if isinstance(e, xerr.ErrorTimeoutExpired):  # exchangelib's name for a refused connection
        return NotThere(url, reason(e))
    # Anything else (HTML, an EWS fault, HTTP 405…) means this is no autodiscover service.
    return NotThere(url, f"not an autodiscover answer ({type(e).__name__})")
