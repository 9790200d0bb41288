"""Who may scrape `/metrics`: it tells request rates per route, outbox sizes and lags.

With `CHORUS_METRICS_TOKEN` set, only a request carrying `Authorization: Bearer <it>`
(compared in constant time); anyone else gets 401. Without it, only peers on a loopback or
private address (Prometheus beside the API, in the same compose network or cluster); a
public address gets 403. The peer is what uvicorn reports: behind a proxy listed in
FORWARDED_ALLOW_IPS it is the client address from X-Forwarded-For, so a reader who comes
in through the public proxy is never "private" for being proxied. The shipped proxy
(deploy/Caddyfile) answers 404 to `/metrics` itself anyway.
"""

import hmac
import ipaddress

from fastapi import Request

from services.api.deps import ServicesDep
from shared.errors import Forbidden, Unauthorized


async def require_metrics_access(request: Request, services: ServicesDep) -> None:
    token = services.settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Both sides as bytes: compare_digest refuses non-ASCII str.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise Unauthorized(
                "/metrics needs `Authorization: Bearer <CHORUS_METRICS_TOKEN>`",
                code="invalid_metrics_token",
            )
        return
    peer = request.client.host if request.client else None
    if not is_internal(peer):
        raise Forbidden(
            "/metrics answers only private and loopback addresses;"
            " set CHORUS_METRICS_TOKEN to scrape from elsewhere",
            code="metrics_not_public",
        )


def is_internal(host: str | None) -> bool:
    """Whether `host` is a loopback or private-network IP address (not a name, not public)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False  # a unix socket or anything unnamed: we cannot tell, so no
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_private
