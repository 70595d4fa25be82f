"""Who may reach the prediction service's handlers, and with how much: the API-key and
rate-limit dependency (api_keys.py decides, this turns it into 401 and 429), the body
size limit (413), and the error answers the OpenAPI document declares."""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.

import json
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from .api_keys import Gatekeeper, Unauthorized
from .service_metrics import Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 65_536


class ErrorBody(BaseModel):
    detail: Any = Field(description="What was wrong")


def declared_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    about = {
        400: "The body is not JSON",
        401: "No API key, or not a valid one (when the service has keys)",
        413: "The body is larger than serving.max_body_bytes",
        422: "The body does not match the request schema",
        429: "This key's rate limit is used up: wait `Retry-After` seconds",
        503: "No servable champion (none yet, other features, or its bytes differ)",
    }
    return {code: {"model": ErrorBody, "description": about[code]} for code in codes}


class BodyLimit:
    """ASGI middleware: reads a request body only up to `max_bytes` (413 beyond it),
    whether the client declares its length or streams it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._too_large(send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        detail = json.dumps({"detail": f"the body is larger than {self.max_bytes} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(detail))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": detail})


def caller_dependency(gate: Gatekeeper) -> Any:
    """The dependency every metered endpoint has: the caller's name, or 401 / 429. The
    OpenAPI document declares the bearer scheme only when the gate asks for keys."""
    bearer = HTTPBearer(
        auto_error=False, description="An API key from `api-key new` (when the service has keys)"
    )

    def admit(request: Request, key: str | None) -> str:
        address = request.client.host if request.client else "unknown"
        try:
            name = gate.identify(key, address)
        except Unauthorized as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        wait = gate.retry_after(name)
        if wait:
            detail = f"rate limit: {gate.rate:g} requests/s, {gate.burst:g} at once, per key"
            raise HTTPException(429, detail, headers={"Retry-After": str(wait)})
        return name

    async def caller_by_key(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        return admit(request, credentials.credentials if credentials else None)

    async def caller_by_address(request: Request) -> str:
        return admit(request, None)

    return Depends(caller_by_key if gate.required else caller_by_address)
