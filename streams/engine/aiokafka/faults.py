"""How aiokafka's exceptions are classified for the engine's error policy."""

from __future__ import annotations

import logging

import aiokafka.errors as aio_errors

from streams.engine.backend import Faults

__all__ = ["FAULTS", "REFUSED_RECORD"]

logger = logging.getLogger(__name__)

#: What the producer or the broker says of one record (not of the cluster): too large or invalid.
REFUSED_RECORD: tuple[type[BaseException], ...] = (
    aio_errors.MessageSizeTooLargeError,
    aio_errors.RecordTooLargeError,
    aio_errors.RecordListTooLargeError,
    aio_errors.CorruptRecordException,
    aio_errors.InvalidTimestampError,
)

#: Any other aiokafka error is the client's or the cluster's: retried in place.
FAULTS = Faults(infrastructure=(aio_errors.KafkaError,), refused=REFUSED_RECORD)
