"""The Faust forwarder (streams/engine/faust/forwarder.py)."""

from __future__ import annotations

import faust

from streams.engine.faust.forwarder import FaustForwarder


def test_the_faust_forwarder_bounds_the_buffer_of_the_topics_it_is_told() -> None:
    app = faust.App("t", broker="kafka://127.0.0.1:1", autodiscover=False)
    forwarder = FaustForwarder(app, {"by-id": 24})
    assert forwarder.topic("by-id").maxsize == 24
    assert forwarder.topic("by-id").clone(is_iterator=True).queue.maxsize == 24  # an agent's buffer
    assert forwarder.topic("field-reports").maxsize is None  # Faust's stream_buffer_maxsize
