"""The pure part of EWS login (converters/ews/auth.py): scopes, token URLs, schemes, errors."""

from __future__ import annotations

import pytest

pytest.importorskip("exchangelib")

from pstkit.converters.ews import auth as ews_auth
from pstkit.errors import AuthError


@pytest.mark.parametrize(
    ("host", "scope"),
    [
        ("outlook.office365.com", "https://outlook.office365.com/.default"),
        ("outlook.office365.us", "https://outlook.office365.us/.default"),  # GCC High
        ("partner.outlook.cn", "https://partner.outlook.cn/.default"),  # 21Vianet
        ("Mail.Contoso.com", "https://mail.contoso.com/.default"),  # hybrid on-premises
        ("", "https://outlook.office365.com/.default"),
    ],
)
def test_default_scope_names_the_ews_host(host: str, scope: str) -> None:
    assert ews_auth.default_scope(host) == scope


def test_token_url_follows_the_authority() -> None:
    assert ews_auth.token_url(ews_auth.DEFAULT_AUTHORITY, "t1") == (
        "https://login.microsoftonline.com/t1/oauth2/v2.0/token"
    )
    assert ews_auth.token_url("https://login.microsoftonline.us/", "t1") == (
        "https://login.microsoftonline.us/t1/oauth2/v2.0/token"
    )


def test_offered_schemes_and_the_password_scheme_chosen() -> None:
    iis = ews_auth.offered_schemes('Negotiate, NTLM, Basic realm="mail.contoso.com"')
    assert iis == {"negotiate", "ntlm", "basic"}
    assert ews_auth.password_scheme("auto", iis, "w") == "ntlm"
    assert ews_auth.password_scheme("auto", frozenset({"basic"}), "w") == "basic"
    assert ews_auth.password_scheme("basic", iis, "w") == "basic"
    assert ews_auth.password_scheme("ntlm", frozenset(), "w") == "ntlm"  # nothing known: try
    with pytest.raises(AuthError, match=r"does not offer NTLM \(it offers basic, bearer\)"):
        ews_auth.password_scheme("ntlm", frozenset({"basic", "bearer"}), "w")
    with pytest.raises(AuthError, match="does not offer Basic"):
        ews_auth.password_scheme("basic", frozenset({"ntlm", "negotiate"}), "w")


@pytest.mark.parametrize(
    ("error", "description", "text"),
    [
        ("invalid_client", "AADSTS7000215: Invalid client secret provided.",
         "the client secret was refused (AADSTS7000215)"),
        ("unauthorized_client", "AADSTS700016: Application with identifier 'a1' was not found",
         "application a1 is unknown in this tenant (AADSTS700016)"),
        ("invalid_tenant", "AADSTS90002: Tenant 'x' not found.", "tenant was not found"),
        ("invalid_resource", "AADSTS500011: The resource principal named x", "check ?scope="),
        ("temporarily_unavailable", "", "refused the login: temporarily_unavailable"),
    ],
)  # fmt: skip
def test_entra_errors_become_one_line(error: str, description: str, text: str) -> None:
    e = ews_auth.entra_error("ews://h", "a1", error, description)
    assert text in str(e) and "\n" not in str(e) and e.exit_code == 6
