"""The FastAPI app: POST /predict (the seed's API), OpenAI-compatible /v1/models, /v1/chat/completions and
/v1/completions (plain, or ``stream: true`` as server-sent events ending with ``[DONE]``), and GET /health.

Why FastAPI + uvicorn + sse-starlette rather than a hand-written http.server: a real ASGI stack gives HTTP/1.1
keep-alive, concurrent connections on one event loop while generation runs in the engine's thread, request
validation from typed models, and correct SSE framing with disconnect detection, all of it maintained
elsewhere. Guards are pure-ASGI middlewares (:mod:`.body_limit`, :mod:`.auth`) so they act before any body is
read; every error uses OpenAI's shape (:mod:`.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from minillm.errors import InputError
from rag.prompting import chat_template_of

from .auth import BearerAuthMiddleware
from .body_limit import DEFAULT_MAX_REQUEST_BYTES, BodyLimitMiddleware
from .completions import ResponseShape, check_supported, generation_request, plan_max_tokens, usage
from .engine import Delta, Engine, Failed, Finished, GenerationRequest, Ticket
from .errors import APIError, install_error_handlers
from .rag_sources import Retrieval
from .schemas import ChatCompletionRequest, CompletionRequest, PredictRequest, SamplingFields
from .served_models import UnknownModel

POLL_SECONDS = 0.25  # how often a waiting request checks whether its client is still there


class ClientGone(Exception):
    """The client disconnected while its request was generating."""


async def next_event(ticket: Ticket, request: Request) -> Delta | Finished | Failed:
    """The ticket's next event; cancels it and raises ClientGone once the client has disconnected (checked at
    least every POLL_SECONDS, also while events keep coming)."""
    while True:
        now = time.monotonic()
        if now - ticket.checked_at >= POLL_SECONDS:
            ticket.checked_at = now
            if await request.is_disconnected():
                ticket.cancel()
                raise ClientGone
        try:
            return await asyncio.wait_for(ticket.events.get(), timeout=POLL_SECONDS)
        except TimeoutError:
            continue


def create_app(engine: Engine, index: Any = None, api_key: str | None = None,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, max_tokens_default: int = 256,
               top_k: int = 3) -> FastAPI:
    """The app serving ``engine``'s model; ``index`` (a SimpleDocumentStore) adds retrieval and ``sources``;
    ``api_key`` requires ``Authorization: Bearer KEY`` on every route but /health."""
    served = engine.served
    retrieval = Retrieval(index, served, top_k) if index is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            await run_in_threadpool(engine.stop)

    app = FastAPI(title="minillm serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    if api_key:
        app.add_middleware(BearerAuthMiddleware, api_key=api_key)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_request_bytes)  # outermost: before auth reads anything

    def adapter_for(name: str | None) -> str | None:
        try:
            return served.resolve(name)
        except UnknownModel as exc:
            raise APIError(404, str(exc), param="model", code="model_not_found") from None

    async def submit(gen: GenerationRequest) -> Ticket:
        try:
            return engine.submit(gen)
        except RuntimeError as exc:
            raise APIError(503, str(exc)) from None

    async def complete(ticket: Ticket, request: Request) -> tuple[str, Finished]:
        pieces: list[str] = []
        while True:
            event = await next_event(ticket, request)
            if isinstance(event, Delta):
                pieces.append(event.text)
            elif isinstance(event, Finished):
                return "".join(pieces), event
            else:
                raise APIError(500, f"generation failed: {type(event.error).__name__}: {event.error}")

    async def respond(request: Request, body: SamplingFields, shape: ResponseShape, prompt_ids: list[int],
                      max_tokens: int, adapter: str | None, extra: dict[str, Any]) -> Response:
        ticket = await submit(generation_request(body, prompt_ids, max_tokens, adapter))
        if body.stream:
            return EventSourceResponse(stream_events(request, ticket, shape, len(prompt_ids), extra), ping=15)
        try:
            text, done = await complete(ticket, request)
        except ClientGone:
            return Response(status_code=499)
        result = shape.complete(text, done.reason, len(prompt_ids), done.completion_tokens)
        return JSONResponse({**result, **extra})

    async def stream_events(request: Request, ticket: Ticket, shape: ResponseShape, prompt_tokens: int,
                            extra: dict[str, Any]) -> AsyncIterator[dict[str, str]]:
        try:
            yield {"data": json.dumps(shape.chunk("" if shape.kind == "chat" else None, first=True))}
            while True:
                event = await next_event(ticket, request)
                if isinstance(event, Delta):
                    yield {"data": json.dumps(shape.chunk(event.text))}
                    continue
                if isinstance(event, Failed):
                    message = f"generation failed: {type(event.error).__name__}: {event.error}"
                    yield {"data": json.dumps({"error": {"message": message, "type": "server_error",
                                                         "param": None, "code": None}})}
                else:
                    last = shape.chunk(None, event.reason)
                    last["usage"] = usage(prompt_tokens, event.completion_tokens)
                    yield {"data": json.dumps({**last, **extra})}
                yield {"data": "[DONE]"}
                return
        except ClientGone:
            return
        finally:
            ticket.cancel()  # a no-op once finished; stops the row when the client went away

    def encode_messages(messages: list[dict[str, str]]) -> list[int]:
        try:
            return served.encode_chat(messages)
        except Exception as exc:  # noqa: BLE001 - a template's own error (no template, a refused role ...)
            raise APIError(400, f"{served.name}'s chat template cannot render these messages ({exc}); "
                                "use /v1/completions with a plain prompt", param="messages") from None

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": served.names(), "time": int(time.time())}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "minillm"} for name in served.names()]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        check_supported(body)
        adapter = adapter_for(body.model)
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        extra: dict[str, Any] = {}
        requested = body.requested_max_tokens()
        try:
            if retrieval is not None:
                budget = requested or min(max_tokens_default, served.context_length // 4)
                prompt_ids, sources = await run_in_threadpool(retrieval.chat_prompt, messages, budget)
                extra["sources"] = sources
            else:
                prompt_ids = await run_in_threadpool(encode_messages, messages)
        except InputError as exc:
            raise APIError(400, str(exc), param="messages") from None
        max_tokens = plan_max_tokens(len(prompt_ids), requested, served.context_length, max_tokens_default)
        shape = ResponseShape("chat", body.model or served.name)
        return await respond(request, body, shape, prompt_ids, max_tokens, adapter, extra)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        check_supported(body)
        adapter = adapter_for(body.model)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if len(prompts) != 1:
            raise APIError(400, f"prompt holds {len(prompts)} strings; send one per request (they are batched)",
                           param="prompt")
        prompt_ids = await run_in_threadpool(served.encode_text, prompts[0])
        max_tokens = plan_max_tokens(len(prompt_ids), body.requested_max_tokens(), served.context_length,
                                     max_tokens_default)
        shape = ResponseShape("text", body.model or served.name)
        return await respond(request, body, shape, prompt_ids, max_tokens, adapter, {})

    @app.post("/predict")
    async def predict(body: PredictRequest, request: Request) -> Response:
        adapter = adapter_for(body.model)
        requested = body.max_tokens
        result: dict[str, Any] = {}
        try:
            if retrieval is not None:
                budget = requested or min(max_tokens_default, served.context_length // 4)
                prompt_ids, sources = await run_in_threadpool(retrieval.predict_prompt, body.question, budget)
                result["sources"] = sources
                requested = budget
            elif chat_template_of(served.tokenizer) is not None:
                prompt_ids = await run_in_threadpool(served.encode_chat, [{"role": "user", "content": body.question}])
            else:
                prompt_ids = await run_in_threadpool(served.encode_text, body.question)
        except InputError as exc:
            raise APIError(400, str(exc), param="question") from None
        max_tokens = plan_max_tokens(len(prompt_ids), requested, served.context_length, max_tokens_default)
        gen = GenerationRequest(prompt_ids, max_tokens, temperature=body.temperature, adapter=adapter)
        ticket = await submit(gen)
        try:
            text, _ = await complete(ticket, request)
        except ClientGone:
            return Response(status_code=499)
        return JSONResponse({"response": text.strip(), **result})

    return app
