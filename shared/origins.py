"""Web origins (`scheme://host[:port]`), as `CHORUS_CORS_ORIGINS` lists them.

A browser names the page that calls us in its `Origin` header: the scheme, the host in
lowercase, and the port only when it is not the scheme's default. Configured origins
are brought to that same form, so matching one is a plain string comparison; anything
that is not an origin (a path, a wildcard, a typo) is refused when the settings load,
not discovered later as a widget that silently cannot read its comments.
"""

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_IPV6 = re.compile(r"^\[[0-9a-f:.]+\]$")
_FORM = "scheme://host[:port] with no path, e.g. https://news.example.com"


def parse_origins(value: object) -> tuple[str, ...]:
    """The origins a comma-separated string (or a list) names, normalized; ValueError
    naming the first entry that is not one."""
    if isinstance(value, str):
        entries: Iterable[object] = value.split(",")
    elif isinstance(value, Iterable):
        entries = value
    else:
        raise ValueError(f"CHORUS_CORS_ORIGINS must be a comma-separated list ({_FORM})")
    origins: list[str] = []
    for entry in entries:
        text = str(entry).strip()
        if text:
            origin = normalize_origin(text)
            if origin not in origins:
                origins.append(origin)
    return tuple(origins)


def normalize_origin(text: str) -> str:
    if text == "*" or text.lower() == "null":
        raise ValueError(
            f"CHORUS_CORS_ORIGINS: {text!r} is not allowed; list each publication's origin "
            f"({_FORM})"
        )
    problem = f"CHORUS_CORS_ORIGINS: {text!r} is not an origin ({_FORM})"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(problem) from exc
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.netloc
        or "@" in parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
        or text.endswith(("?", "#"))
        or port == 0
    ):
        raise ValueError(problem)
    if ":" in host:  # urlsplit gives an IPv6 address without its brackets
        host = f"[{host}]"
    if not (_HOST.fullmatch(host) or _IPV6.fullmatch(host)):
        raise ValueError(problem)
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
