"""The engine's view of a Faust app's consumer group: rebalances begun, whether one is in progress,
and the current generation."""

from __future__ import annotations

from typing import Any

__all__ = ["FaustGroup"]


class FaustGroup:
    """Counts the rebalances of ``app``'s consumer group as they begin.

    Faust calls ``app.on_rebalance_start()`` synchronously from the consumer's revocation callback,
    in the consumer's thread, before any of the rebalance runs on the event loop (revoking table
    partitions, flushing the producer). Counting there lets the engine stop a batch in flight at
    its next await, before it changes a table that is being handed over.
    """

    def __init__(self, app: Any) -> None:
        self.rebalances = 0
        self._app = app
        start = app.on_rebalance_start

        def on_rebalance_start() -> None:
            self.rebalances += 1
            start()

        app.on_rebalance_start = on_rebalance_start

    def rebalancing(self) -> bool:
        return bool(getattr(self._app, "rebalancing", False))

    def generation(self) -> int | None:
        generation = getattr(self._app, "consumer_generation_id", None)
        return generation if isinstance(generation, int) else None
