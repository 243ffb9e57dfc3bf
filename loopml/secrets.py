"""Secrets in configuration: URLs that carry credentials are written in ``params.yaml`` as
``${ENV_VAR}`` references, stay references wherever configuration is stored (Prefect parameters,
MLflow params, artifacts, logs) and are expanded only in memory, at the moment of use. Anything
that prints a URL prints it through :func:`redact_url`."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from loopml.exceptions import ConfigError

MASK = "***"
SECRET_PARAMS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "token",
        "access_token",
        "secret",
        "client_secret",
        "key",
        "api_key",
        "apikey",
        "sig",
        "signature",
        "auth",
        "x-amz-signature",
        "x-amz-credential",
        "sslpassword",
    }
)
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""A ``${VAR}`` reference (not ``${VAR:-default}``): group 1 is the variable's name."""
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_WEBHOOK_HOSTS = ("hooks.slack.com", "discord.com", "discordapp.com", "webhook.office.com")


def _mask_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in SECRET_PARAMS for k, _ in pairs):
        return query
    return urlencode([(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="*")


def redact_url(url: str) -> str:
    """``url`` with its password, secret query values and webhook path tokens masked.

    The user part ends at the *last* ``@`` before the host, so a password containing ``@`` is
    masked whole."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    path = parts.path
    if parts.hostname and parts.hostname.endswith(_WEBHOOK_HOSTS):
        path = "/" + MASK
    query = _mask_query(parts.query)
    if (netloc, path, query) == (parts.netloc, parts.path, parts.query):
        return url  # nothing secret (and urlunsplit would rewrite 'sqlite:///x')
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def redact(text: str) -> str:
    """Every URL in ``text`` redacted (for error messages and logs)."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries a secret: a password, a secret query value, a webhook token."""
    return redact_url(url) != url


def is_reference(value: str) -> bool:
    return bool(REFERENCE.search(value))


def expand(value: str, key: str) -> str:
    """``value`` with every ``${VAR}`` replaced from the environment, in memory only.

    Raises :class:`ConfigError` naming ``key`` and the variable when one is unset."""
    missing = [name for name in REFERENCE.findall(value) if name not in os.environ]
    if missing:
        raise ConfigError(
            [
                f"{key}: the environment variable {', '.join(missing)} is not set "
                "(it holds the value)"
            ]
        )
    return REFERENCE.sub(lambda m: os.environ[m.group(1)], value)


def refuse_literal_secret(value: str | None) -> str | None:
    """``value`` unchanged, unless it is a URL with a literal credential instead of a
    ``${VAR}`` reference: then ValueError (a config validator's message; pydantic adds the key)."""
    if value and not is_reference(value) and has_credentials(value):
        raise ValueError(
            f"holds a credential in plain text ({redact_url(value)}); write the URL as a "
            "reference such as ${LOOPML_SOURCE_URL} and set that environment variable"
        )
    return value
