"""The engine: one loop (take → handle → forward → write → after-write → ack) and one error
policy, under every feature. Features only provide handlers."""

from streams.engine.batch import Forward, Handler, Message, Outcome, Output, messages_of
from streams.engine.loop import (
    Engine,
    Flow,
    Forwarder,
    RowWriter,
    bundle_forwards,
    deliver_all,
    observe_batch,
)

__all__ = [
    "Engine",
    "Flow",
    "Forward",
    "Forwarder",
    "Handler",
    "Message",
    "Outcome",
    "Output",
    "RowWriter",
    "bundle_forwards",
    "deliver_all",
    "messages_of",
    "observe_batch",
]
