"""One ASGI layer: the upload limit, security headers on every response, and the anonymous
CSRF cookie when one was minted."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


# The headers as the ASGI messages carry them (Starlette's responses name theirs in lower case).
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_CACHE_CONTROL = (b"cache-control", b"no-store")


class BodyTooLarge(Exception):
    """The request body is larger than the configured upload limit."""


class EdgeMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware), one layer for what every request gets: bodies over
    `max_bytes` refused before they are parsed or spooled to disk, and on every response the
    security headers (unless the app set its own), `Cache-Control: no-store` outside
    `/static/`, and the anonymous CSRF cookie when one was minted."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, anon_cookie: str, https_only: bool | None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.anon_cookie = anon_cookie
        self.https_only = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_bytes:
                    received = int(value)
                break

        async def counted() -> Message:
            # A declared oversize body fails on the first read, before a byte is spooled.
            nonlocal received
            if received > self.max_bytes:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def headed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                named = {name.lower() for name, _ in headers}
                headers += [h for h in _RAW_HEADERS if h[0] not in named]
                if b"cache-control" not in named and not scope["path"].startswith("/static/"):
                    headers.append(_CACHE_CONTROL)
                anon = scope.get("state", {}).get("new_anon_cookie")
                if anon:
                    headers.append((b"set-cookie", self._cookie(scope, anon).encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, counted, headed)

    def _cookie(self, scope: Scope, value: str) -> str:
        secure = self.https_only if self.https_only is not None else scope["scheme"] == "https"
        parts = [f"{self.anon_cookie}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if secure:
            parts.append("Secure")
        return "; ".join(parts)
