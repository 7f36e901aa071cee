"""PredictCoalescer: dynamic batching of concurrent predict calls, without a timer.

A call whose group (same model file, proba flag and column layout) has nothing in flight is sent at
once, alone. Calls of that group arriving while one is in flight would only queue behind it on the
model host, so they wait here instead; when the in-flight call ends, the waiting calls (up to
`max_rows` rows) are stacked into one batch and sent as one host call by one of them (the leader),
and every caller takes back its own rows of the outputs. Model outputs are per row, so stacking
changes nothing but the number of round trips, which is what a small model's time is spent on.

When the combined call fails on its input (InvalidInput, ModelRejected: one caller's bad row or a
size limit) or answers with outputs that are not one row per input row, every caller sends its own
batch alone and gets its own answer or error. A crashed or unreachable host (ModelUnavailable) and
anything unexpected reach every caller of the combined call. No call waits forever: the leader
always hands over and releases its followers, and a follower gives up after its own allowance.
Everything happens on one event loop, so the bookkeeping needs no lock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlplatform.errors import InvalidInput, ModelRejected, ModelUnavailable
from mlplatform.inference import protocol
from mlplatform.inference.batch import Batch

# batch -> (outputs: name -> array with a row per input row, details such as host and model_seconds)
Send = Callable[[Batch], Awaitable[tuple[dict, dict]]]

# Failures that may be one caller's fault: the callers are asked again one by one. ProtocolError
# here comes from packing (a combined frame over the size cap): received garbage is ModelUnavailable.
RETRY_ALONE_ERRORS = (InvalidInput, ModelRejected, protocol.ProtocolError)


def group_key(sha256: str, path: Path, batch: Batch, *, proba: bool) -> Hashable:
    """Calls with equal keys can be stacked into one batch that the host decodes and the model
    reads exactly as each of them alone: same file, same outputs asked for, same column names in
    the same order, same dtype per column (a float32 column stays float32), same block layout."""
    if batch.block is not None:
        layout: Hashable = "block"
    else:
        layout = tuple(v.dtype.str for v in batch.values)
    return sha256, str(path), proba, tuple(batch.columns), layout


@dataclass(eq=False)  # identity equality: a call is removed from its queue by identity
class _Call:
    batch: Batch
    turn: asyncio.Event = field(default_factory=asyncio.Event)  # set: lead `group`, or settled
    group: list[_Call] | None = None  # set on the call chosen to send this group
    result: dict | None = None
    error: BaseException | None = None
    retry_alone: bool = False

    @property
    def rows(self) -> int:
        return self.batch.n_rows

    @property
    def settled(self) -> bool:
        return self.result is not None or self.error is not None or self.retry_alone


class PredictCoalescer:
    """The calls of one event loop (the client keeps one coalescer per loop)."""

    def __init__(self, *, max_rows: int, wait_timeout: float):
        self.max_rows = max_rows
        self.wait_timeout = wait_timeout
        # a key is present while a call of its group is in flight; its deque holds the calls waiting
        self._waiting: dict[Hashable, deque[_Call]] = {}

    async def predict(self, key: Hashable, batch: Batch, send: Send) -> dict:
        """`await send(batch)` makes one host call; returns the outputs for `batch`'s rows plus
        the details of the host call that computed them and "batched" (how many calls it combined)."""
        if batch.n_rows > self.max_rows:  # too big to share a call: sent as it is, queueing nowhere
            return _answer(*await send(batch), 1)
        call = _Call(batch)
        queue = self._waiting.get(key)
        if queue is None:  # nothing in flight: go now, alone
            self._waiting[key] = deque()
            call.group = [call]
        else:
            queue.append(call)
            await self._wait_for_turn(key, call)
        if call.group is not None:
            await self._lead(key, call, send)
        return await _outcome(call, send)

    async def _wait_for_turn(self, key: Hashable, call: _Call) -> None:
        """Until this call is chosen to lead a group or its outcome is in. The call ahead and this
        call's own would each have ended within the allowance on the host's queue, so waiting
        longer means something is stuck: give up as a socket timeout would."""
        try:
            async with asyncio.timeout(self.wait_timeout):  # unlike wait_for, never drops a cancellation
                await call.turn.wait()
            return
        except asyncio.TimeoutError:
            error: BaseException = ModelUnavailable(
                f"no answer from the model host service within {self.wait_timeout:g} s", retry_after=2)
        except asyncio.CancelledError as cancelled:
            error = cancelled
        if call.group is not None:  # chosen to lead just as it gave up: nobody will send that group
            self._abandon(key, call.group)
        elif call in self._waiting.get(key, ()):  # still queued (a member of a group in flight is not)
            self._waiting[key].remove(call)
        raise error

    async def _lead(self, key: Hashable, leader: _Call, send: Send) -> None:
        group = leader.group
        try:
            await _send_group(group, send)
        except asyncio.CancelledError:  # the leader's own request went away; its followers did not
            self._abandon(key, group)
            raise
        except BaseException as exc:  # the followers get what the leader got, never a silent hang
            _fail_unsettled(group, exc)
            self._release(key, group)
        else:
            self._release(key, group)

    def _abandon(self, key: Hashable, group: list[_Call]) -> None:
        _fail_unsettled(group, ModelUnavailable("the combined model host call was abandoned", retry_after=1))
        self._release(key, group)

    def _release(self, key: Hashable, group: list[_Call]) -> None:
        for call in group:
            call.turn.set()
        self._hand_over(key)

    def _hand_over(self, key: Hashable) -> None:
        """The group in flight is done: the calls that waited behind it go next, as one group led
        by the first of them; with none waiting the key is no longer in flight."""
        queue = self._waiting[key]
        group = _take(queue, self.max_rows)
        if not group:
            del self._waiting[key]
            return
        group[0].group = group
        group[0].turn.set()


def _fail_unsettled(group: list[_Call], error: BaseException) -> None:
    for call in group:
        if not call.settled:
            call.error = error


def _take(queue: deque[_Call], max_rows: int) -> list[_Call]:
    """The oldest waiting calls, in order, while their rows fit in `max_rows` (at least one)."""
    group, rows = [], 0
    while queue and (not group or rows + queue[0].rows <= max_rows):
        call = queue.popleft()
        group.append(call)
        rows += call.rows
    return group


async def _send_group(group: list[_Call], send: Send) -> None:
    if len(group) == 1:  # its own batch: whatever happens is its own answer
        group[0].result = _answer(*await send(group[0].batch), 1)
        return
    try:
        outputs, details = await send(stack([call.batch for call in group]))
        parts = split(outputs, [call.rows for call in group])
    except RETRY_ALONE_ERRORS:
        parts = None
    if parts is None:
        for call in group:
            call.retry_alone = True
        return
    for call, part in zip(group, parts):
        call.result = _answer(part, details, len(group))


async def _outcome(call: _Call, send: Send) -> dict:
    if call.error is not None:
        raise call.error
    if call.retry_alone:
        return _answer(*await send(call.batch), 1)
    return call.result


def _answer(outputs: dict, details: dict, batched: int) -> dict:
    return {**outputs, **details, "batched": batched}


def stack(batches: list[Batch]) -> Batch:
    """One batch holding the rows of `batches` in order (they share a group key)."""
    first = batches[0]
    if first.block is not None:
        return Batch.from_block(first.columns, np.vstack([b.block for b in batches]))
    columns = zip(*(b.values for b in batches))
    return Batch(first.columns, [np.concatenate(parts) for parts in columns])


def split(outputs: dict, rows: list[int]) -> list[dict] | None:
    """Each batch's rows of every output, in order; None when an output is not one row per input
    row (the rows cannot be told apart, so the stacked answer is useless)."""
    total = sum(rows)
    if not all(isinstance(a, np.ndarray) and a.ndim >= 1 and a.shape[0] == total for a in outputs.values()):
        return None
    bounds = np.cumsum([0, *rows]).tolist()
    return [{name: array[start:stop] for name, array in outputs.items()}
            for start, stop in zip(bounds, bounds[1:])]
