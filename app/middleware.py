"""Security headers on every response, and the anonymous CSRF cookie when one was minted."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
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


class SecurityHeadersMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): adds headers without buffering the body."""

    def __init__(self, app: ASGIApp, *, anon_cookie: str, https_only: bool | None) -> None:
        self.app = app
        self.anon_cookie = anon_cookie
        self.https_only = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if "cache-control" not in headers and not scope["path"].startswith("/static/"):
                    headers["Cache-Control"] = "no-store"
                anon = scope.get("state", {}).get("new_anon_cookie")
                if anon:
                    headers.append("Set-Cookie", self._cookie(scope, anon))
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _cookie(self, scope: Scope, value: str) -> str:
        secure = self.https_only if self.https_only is not None else scope["scheme"] == "https"
        parts = [f"{self.anon_cookie}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if secure:
            parts.append("Secure")
        return "; ".join(parts)


class BodyTooLarge(Exception):
    """The request body is larger than the configured upload limit."""


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` before they are parsed or spooled to disk."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

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

        await self.app(scope, counted, send)
