"""``dampak config`` (the effective settings, secrets masked) and ``dampak schemas`` (the topics'
JSON Schemas exported)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from streams.settings import Settings

__all__ = ["cmd_config", "cmd_schemas"]

logger = logging.getLogger(__name__)


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    # Secrets and every URL-valued setting's credentials masked (Settings.redacted).
    print(json.dumps(settings.redacted(), indent=2, default=str))
    return 0


def cmd_schemas(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.export import export_json_schemas

    for path in export_json_schemas(Path(args.out)):
        print(path)
    return 0
