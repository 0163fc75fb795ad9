"""Operations shared by the runtime and the commands: Kafka administration (``admin``), consumer
lag sampling (``lag``), Prometheus metrics (``metrics``), the HTTP endpoints (``web``), the command
center page (``center``) and terminal progress (``progress``)."""

__all__: list[str] = []
