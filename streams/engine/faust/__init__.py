"""The Faust back-end: the agents' runner (``runner``), the group (``group``), the tables' state and
changelog (``state``, ``changelog``), the forwarder (``forwarder``), how its clients' exceptions
are classified (``faults``), and the patches to faust-streaming (``acks``, ``resume``,
``producer``). It imports no other back-end."""

__all__: list[str] = []
