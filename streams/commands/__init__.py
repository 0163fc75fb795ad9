"""The command-line commands that are more than a call into the runtime: key rotation
(``rotation``), the registry import (``registry_import``, reading files through
``registry_files``), the warning feeds (``feeds``) and the table output (``cli_output``).
``streams.cli`` parses the command line and dispatches to them."""

__all__: list[str] = []
