"""dampak stream processing: the Faust app, its agents, the CLI and the local stack."""
