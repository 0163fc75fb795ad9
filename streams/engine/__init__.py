"""The engine: one loop (take → handle → forward → write → after-write → ack) and one error
policy, under every feature. Features only provide handlers. The rules here import no Kafka
client; the back-ends that run them are ``streams.engine.faust`` and ``streams.engine.aiokafka``,
behind ``streams.engine.backend``."""

from streams.engine.backend import Faults, Forwarder, Group, RowWriter
from streams.engine.batch import Forward, Handler, Message, Outcome, Output, messages_of
from streams.engine.loop import Batching, Engine, Flow, bundle_forwards, deliver_all, observe_batch

__all__ = [
    "Batching",
    "Engine",
    "Faults",
    "Flow",
    "Forward",
    "Forwarder",
    "Group",
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
