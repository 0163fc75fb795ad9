"""The plain aiokafka back-end: the consumer-group runner (``consumer``), the forwarder
(``forwarder``), how aiokafka's exceptions are classified (``faults``), and the patch to aiokafka
(``connections``). It imports no other back-end."""

__all__: list[str] = []
