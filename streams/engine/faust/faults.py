"""How a Faust worker's exceptions are classified for the engine's error policy: Faust's own, and
those of the Kafka clients beneath it (aiokafka, Faust's driver, and kafka-python)."""

from __future__ import annotations

import logging

import aiokafka.errors as aio_errors
import kafka.errors as kafka_errors
from faust.exceptions import DecodeError, FaustError

from streams.engine.backend import Faults

__all__ = ["FAULTS"]

logger = logging.getLogger(__name__)

FAULTS = Faults(
    # Faust's tables, topics and producer, and the Kafka clients: not a message's fault.
    infrastructure=(FaustError, aio_errors.KafkaError, kafka_errors.KafkaError),
    # ... except the Faust errors about a message's own bytes.
    message=(DecodeError,),
    # What the producer or the broker says of one record: too large or invalid.
    refused=(
        aio_errors.MessageSizeTooLargeError,
        aio_errors.RecordTooLargeError,
        aio_errors.RecordListTooLargeError,
        aio_errors.CorruptRecordException,
        aio_errors.InvalidTimestampError,
        kafka_errors.MessageSizeTooLargeError,
        kafka_errors.RecordListTooLargeError,
        kafka_errors.CorruptRecordError,
        kafka_errors.InvalidTimestampError,
    ),
)
