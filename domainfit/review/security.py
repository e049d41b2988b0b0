"""The review page's guard: a secret token on every request, same-origin JSON posts only.

The page shows an organisation's documents and takes decisions that change what a
model is trained on, so other local users and other web pages in the same browser
must not read it or post to it. :class:`ReviewGuard` is an ASGI middleware that, for
every request (pages, API, downloads, static files):

- refuses a ``Host`` that is not loopback when the server is bound to loopback
  (DNS rebinding);
- requires the token: ``?token=`` on GETs (or the header), the ``X-Review-Token``
  header on POSTs, compared in constant time;
- refuses POSTs that come from another origin (``Origin`` / ``Sec-Fetch-Site``) or
  are not ``application/json`` (what an HTML form on another site can send);
- adds a strict Content-Security-Policy (no inline script, nothing off-site),
  ``nosniff``, ``no-referrer`` (the token never leaves in a Referer) and no caching.

Refusals are a 4xx with a one-line plain-text reason.

Example::

    token = new_token()
    app = ReviewGuard(starlette_app, token, loopback_only=True)
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_PARAM = "token"
TOKEN_HEADER = "X-Review-Token"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}

ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST"})


def new_token() -> str:
    """A fresh unguessable token for one server's lifetime."""
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8000`` -> ``::1``)."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")]
    return host_header.rsplit(":", 1)[0] if ":" in host_header else host_header


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison that also copes with non-ASCII input."""
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def refusal(scope: Scope, token: str, *, loopback_only: bool) -> tuple[int, str] | None:
    """Why this request must be refused, as (status, one-line reason); None lets it through."""
    headers = Headers(scope=scope)
    method = scope["method"]
    host = headers.get("host", "")
    if loopback_only and not is_loopback(host_name(host)):
        return 400, f"Host {host!r} is not this machine's loopback address; use the printed URL"
    if method not in ALLOWED_METHODS:
        return 405, f"method {method} is not allowed here"
    if method == "POST":
        site = headers.get("sec-fetch-site")
        if site in ("cross-site", "same-site"):
            return 403, f"cross-origin POST refused (Sec-Fetch-Site: {site})"
        origin = headers.get("origin")
        own_origin = f"{scope.get('scheme', 'http')}://{host}"
        if origin is not None and origin != own_origin:
            return 403, f"cross-origin POST refused (Origin {origin} is not {own_origin})"
        given = headers.get(TOKEN_HEADER)
        if given is None:
            return 401, f"missing {TOKEN_HEADER} header: POSTs carry the token from the page URL"
    else:
        given = QueryParams(scope.get("query_string", b"")).get(TOKEN_PARAM) or headers.get(TOKEN_HEADER)
        if given is None:
            return 401, "missing token: open the URL that `domainfit review` printed (it ends in ?token=...)"
    if not token_matches(given, token):
        return 403, "wrong token: open the URL that this `domainfit review` printed"
    if method == "POST":
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return 415, f"POST bodies must be application/json, not {media_type or 'untyped'}"
    return None


class ReviewGuard:
    """ASGI middleware applying :func:`refusal` and :data:`SECURITY_HEADERS` to every request."""

    def __init__(self, app: ASGIApp, token: str, *, loopback_only: bool = True):
        self.app = app
        self.token = token
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = refusal(scope, self.token, loopback_only=self.loopback_only)
        if refused is not None:
            status, reason = refused
            response = PlainTextResponse(reason + "\n", status_code=status, headers=SECURITY_HEADERS)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
