"""The fault suite uses the integration tests' fixtures (the shared broker must answer)."""

from tests.integration.conftest import kafka_bootstrap

__all__ = ["kafka_bootstrap"]
