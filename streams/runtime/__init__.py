"""The runtime: the processes dampak runs. The Faust worker (``worker``; its app wired in ``app``
from the flows of ``flows``), the writer process (``writer``), the hand-off of rows between them
(``handoff``), the bulk restore of local tables (``restore``) and the start-up both processes
share (``startup``)."""

__all__: list[str] = []
