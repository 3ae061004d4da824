"""`Relay`: a held run's stream, from the worker to the bus, as the run emits it.

Every chunk the run streams (each mode its order asked for, and the modes every server feed
carries) is numbered and queued on the run's publisher as it comes, without making the run wait;
when the run ends here, the run-ended signal follows its last chunk with the final record. A run
that stops here without ending (handed back, lease lost) gets no end: the worker that resumes it
continues the same stream after its last offset.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from tether.bus import Publisher, StreamBus
from tether.checkpoint.serde import Serializer
from tether.errors import RunCancelled
from tether.worker import frames

if TYPE_CHECKING:
    from tether.runs.handle import Run
    from tether.types import RunInfo

logger = logging.getLogger("tether.worker")


class Relay:
    """Publishes one run's stream (start it with `start`, end it with `finish`; a run that
    streams nothing gets only `finish`).

    Args:
        bus: the worker's bus.
        serde: encodes the payloads (the store's serializer).
        run_id: the run.
        fresh: this is the run's first claim (epoch 1): no worker published for it before,
            so its stream starts at the first offset without asking the bus for its last.
    """

    def __init__(self, bus: StreamBus, serde: Serializer, run_id: str, *,
                 fresh: bool = False) -> None:
        self.bus = bus
        self.serde = serde
        self.run_id = run_id
        self.fresh = fresh
        self._publisher: Publisher | None = None
        self._pump: asyncio.Task[None] | None = None

    def start(self, run: Run) -> None:
        """Carry `run`'s chunks to the bus from now until it ends (a task on this loop)."""
        self._pump = asyncio.get_running_loop().create_task(
            self._carry(run), name=f"tether-relay-{self.run_id}")

    async def _carry(self, run: Run) -> None:
        # The publisher is opened while the run starts: its first chunks wait in its buffer.
        self._publisher = publisher = await self.bus.publisher(self.run_id, fresh=self.fresh)
        serde = self.serde
        try:
            async for chunk in run:
                name, payload = frames.event_name(chunk)
                publisher.send(name, frames.encode(payload, serde))
        except (RunCancelled, Exception):  # noqa: BLE001 - the run's own end, told by `finish`
            pass  # (an asyncio.CancelledError that is not a RunCancelled stops the relay)

    async def finish(self, info: RunInfo | None) -> None:
        """Wait for the last chunk to be published, then the run-ended signal with `info`
        (None: the run did not end here, no signal).

        Cancellation:
            Stops the relay; the run-ended signal may then be missing, and servers fall back
            on the durable record.
        """
        if self._pump is not None:
            await asyncio.wait({self._pump})
            if not self._pump.cancelled() and self._pump.exception() is not None:
                logger.warning("run %s: relaying its stream failed: %r", self.run_id,
                               self._pump.exception())
        publisher = self._publisher
        if info is None:
            if publisher is not None:
                await publisher.flush()
            return
        if publisher is None:  # it streamed nothing: only its end
            publisher = await self.bus.publisher(self.run_id, fresh=self.fresh)
        await publisher.end(frames.encode_end(info, self.serde))

    def stop(self) -> None:
        """Stop relaying at once (the worker is going away)."""
        if self._pump is not None:
            self._pump.cancel()


__all__ = ["Relay"]
