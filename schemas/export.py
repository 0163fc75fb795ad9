"""Export each topic's JSON Schema for upstream publishers (``dampak schemas``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import BaseModel

from schemas.alerts import Alert
from schemas.field_reports import FieldReport
from schemas.households import Household
from schemas.incidents import IncidentLink

__all__ = ["TOPIC_MODELS", "export_json_schemas", "json_schema"]

logger = logging.getLogger(__name__)

#: Logical topic name -> its contract model.
TOPIC_MODELS: dict[str, type[BaseModel]] = {
    "households": Household,
    "field-reports": FieldReport,
    "disaster-alerts": Alert,  # the normalized form; BMKG and CAP payloads are converted to it
    "incident-links": IncidentLink,
}


def json_schema(topic: str) -> dict[str, object]:
    model = TOPIC_MODELS[topic]
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://dampak.example/schemas/{topic}.v1.schema.json"
    schema["title"] = f"{topic} (v1)"
    return schema


def export_json_schemas(out_dir: Path) -> list[Path]:
    """Write ``<topic>.v1.schema.json`` for every topic; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for topic in TOPIC_MODELS:
        path = out_dir / f"{topic}.v1.schema.json"
        path.write_text(json.dumps(json_schema(topic), indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths
