"""Versioned topic contracts: frozen pydantic v2 models, one module per topic."""
