"""The generation engine: one worker thread per served model takes requests from a queue and runs them in
batches, so two generations never interleave in one model's cache.

Requests waiting when a batch starts join it (up to ``max_batch_size``; after a batch of several rows, a short
``batch_wait_s`` lets the clients' next requests catch up) when they use the same adapter and
compatible sampling settings (greedy; or the same temperature and top_p; a request with a ``seed`` runs alone so
its output is reproducible). Their prompts are left-padded into one ``stream(input_ids, attention_mask, ...)``
call (:func:`minillm.hf.streaming.streaming_function`); each row stops at its own max_tokens, stop strings or
EOS, and its text goes to its own client through an ``asyncio.Queue`` fed with ``loop.call_soon_threadsafe``. A
request whose client went away is cancelled: its row is dropped, and once every row of a batch is finished or
cancelled the stream is closed, which stops the generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from .detokenize import IncrementalText
from .served_models import ServedModel

logger = logging.getLogger(__name__)


@dataclass
class GenerationRequest:
    """One completion to make: prompt ids and its settings (``temperature`` 0 means greedy)."""

    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    adapter: str | None = None

    def batch_key(self) -> tuple | None:
        """Requests with equal keys may share a batch; None: this one runs alone (it has a seed)."""
        if self.seed is not None:
            return None
        if self.temperature <= 0:
            return (self.adapter, "greedy")
        return (self.adapter, float(self.temperature), self.top_p)


@dataclass(frozen=True)
class Delta:
    """New completion text."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The completion ended: ``reason`` "stop" (EOS or a stop string) or "length"; tokens generated."""

    reason: str
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    """The generation raised ``error``."""

    error: BaseException


class Ticket:
    """A submitted request: its events arrive on ``events`` (Delta..., then Finished or Failed)."""

    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.request, self.loop = request, loop
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = threading.Event()
        self.checked_at = 0.0  # when the server last checked that the client is still there (time.monotonic)

    def cancel(self) -> None:
        """Stop this request's generation (its client went away)."""
        self.cancelled.set()

    def put(self, event: Delta | Finished | Failed) -> None:
        """Hand ``event`` to the request's event loop (from the worker thread)."""
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancel()


class Engine:
    """Queue + batching worker for one :class:`ServedModel` (see the module docstring)."""

    def __init__(self, served: ServedModel, max_batch_size: int = 8, batch_wait_s: float = 0.02) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.served = served
        self.max_batch_size = max_batch_size if served.batched else 1
        self.batch_wait_s = batch_wait_s
        self.batch_sizes: list[int] = []  # the size of every batch run (for tests and the bench)
        self.batch_steps: list[int] = []  # the generation steps every batch ran (cancelled ones stop early)
        self._pending: deque[Ticket] = deque()
        self._condition = threading.Condition()
        self._held = False
        self._stopping = False
        self._worker: threading.Thread | None = None

    # ----------------------------------------------------------------- life cycle
    def start(self) -> None:
        """Start the worker thread (again after :meth:`stop`); a no-op while it runs."""
        with self._condition:
            if self._worker is not None and self._worker.is_alive():
                return
            self._stopping = False
            self._worker = threading.Thread(target=self._run, name=f"serve-{self.served.name}", daemon=True)
            self._worker.start()

    def stop(self) -> None:
        """Stop the worker after its current batch; waiting requests are cancelled."""
        with self._condition:
            self._stopping = True
            waiting = list(self._pending)
            self._pending.clear()
            self._condition.notify_all()
        for ticket in waiting:
            ticket.put(Failed(RuntimeError("the server is shutting down")))
        if self._worker is not None:
            self._worker.join()
        self._worker = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Inside the block the worker starts no batch: requests submitted there are batched together after."""
        with self._condition:
            self._held = True
        try:
            yield
        finally:
            with self._condition:
                self._held = False
                self._condition.notify_all()

    def waiting(self) -> int:
        """How many requests wait for a batch."""
        with self._condition:
            return len(self._pending)

    def submit(self, request: GenerationRequest) -> Ticket:
        """Queue ``request`` (call from a running event loop); its events arrive on the returned ticket."""
        ticket = Ticket(request, asyncio.get_running_loop())
        with self._condition:
            if self._stopping:
                raise RuntimeError("the engine is stopped")
            self._pending.append(ticket)
            self._condition.notify_all()
        return ticket

    # ----------------------------------------------------------------- the worker
    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self.batch_sizes.append(len(batch))
            try:
                self._run_batch(batch)
            except Exception as exc:
                logger.exception("generation failed for a batch of %d", len(batch))
                for ticket in batch:
                    ticket.put(Failed(exc))

    def _take_batch(self) -> list[Ticket] | None:
        """The oldest live request and the compatible ones waiting behind it; None once stopping.

        When the last batch had several rows (concurrent clients, whose next requests arrive a few milliseconds
        after their answers), a batch that is not full waits up to ``batch_wait_s`` for them to join, so the
        clients stay in one batch instead of splitting into a small batch and a large one.
        """
        with self._condition:
            while True:
                while self._pending and self._pending[0].cancelled.is_set():
                    self._pending.popleft()
                if self._stopping:
                    return None
                if self._pending and not self._held:
                    break
                self._condition.wait()
            first = self._pending.popleft()
            batch = [first]
            key = first.request.batch_key()
            if key is None:
                return batch
            self._join_compatible(batch, key)
            busy = bool(self.batch_sizes) and self.batch_sizes[-1] > 1
            deadline = time.monotonic() + self.batch_wait_s
            while busy and len(batch) < self.max_batch_size and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._condition.wait(left)
                self._join_compatible(batch, key)
            return batch

    def _join_compatible(self, batch: list[Ticket], key: tuple) -> None:
        """Move waiting requests with batch key ``key`` into ``batch`` (up to the limit); caller holds the lock."""
        keep: deque[Ticket] = deque()
        while self._pending:
            ticket = self._pending.popleft()
            if ticket.cancelled.is_set():
                continue
            if len(batch) < self.max_batch_size and ticket.request.batch_key() == key:
                batch.append(ticket)
            else:
                keep.append(ticket)
        self._pending = keep

    def _inputs(self, batch: list[Ticket]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded (B, T) ids and their attention mask."""
        longest = max(len(t.request.prompt_ids) for t in batch)
        ids = torch.full((len(batch), longest), self.served.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, ticket in enumerate(batch):
            prompt = ticket.request.prompt_ids
            ids[row, longest - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            mask[row, longest - len(prompt):] = 1
        device = self.served.device()
        return ids.to(device), mask.to(device)

    def _run_batch(self, batch: list[Ticket]) -> None:
        first = batch[0].request
        self.served.select(first.adapter)
        ids, mask = self._inputs(batch)
        sample = first.temperature > 0
        stream = self.served.stream_function()(
            ids, attention_mask=mask, max_new_tokens=max(t.request.max_tokens for t in batch), do_sample=sample,
            temperature=float(first.temperature) if sample else 1.0, top_k=None,
            top_p=first.top_p if sample else None, seed=first.seed, eos_token_id=self.served.eos_token_ids,
            pad_token_id=self.served.pad_token_id,
        )
        eos = set(self.served.eos_token_ids)
        texts = [IncrementalText(self.served.tokenizer, t.request.stop) for t in batch]
        counts = [0] * len(batch)
        active = [True] * len(batch)
        steps = 0

        def finish(row: int, reason: str) -> None:
            active[row] = False
            rest = texts[row].finish() if reason == "length" or not texts[row].stopped else ""
            if rest:
                batch[row].put(Delta(rest))
            batch[row].put(Finished(reason, counts[row]))

        try:
            for step in stream:
                steps += 1
                for row, token in enumerate(step.tolist()):
                    if not active[row]:
                        continue
                    if batch[row].cancelled.is_set():
                        active[row] = False
                        continue
                    counts[row] += 1
                    if token in eos:
                        finish(row, "stop")
                        continue
                    delta = texts[row].add(token)
                    if delta:
                        batch[row].put(Delta(delta))
                    if texts[row].stopped:
                        finish(row, "stop")
                    elif counts[row] >= batch[row].request.max_tokens:
                        finish(row, "length")
                if not any(active):
                    break
        finally:
            stream.close()  # stops the generation when every row ended early
            self.batch_steps.append(steps)
        for row in range(len(batch)):
            if active[row] and not batch[row].cancelled.is_set():
                finish(row, "length")


async def collect(ticket: Ticket) -> tuple[str, Finished]:
    """The whole completion of ``ticket``: its text and its Finished event (Failed raises its error)."""
    pieces: list[str] = []
    while True:
        event = await ticket.events.get()
        if isinstance(event, Delta):
            pieces.append(event.text)
        elif isinstance(event, Finished):
            return "".join(pieces), event
        else:
            raise event.error

