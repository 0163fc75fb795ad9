"""Local development tools, apart from the runtime: the Kafka broker that ``dampak up`` starts
from Maven Central jars (``broker``), and the bundled demo scenario (``demo``). The CLI uses them;
the worker never imports them."""
