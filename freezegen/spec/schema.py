"""The JSON Schema of spec v1, generated from the models (editors use it for completion)."""

from __future__ import annotations

import json
from typing import Any

SCHEMA_ID = "https://freezegen.dev/schemas/freezegen.schema.json"


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) that a spec file must satisfy."""
    from freezegen.spec.models import Spec

    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render_schema() -> str:
    """Return the schema as the text committed in schemas/freezegen.schema.json."""
    return json.dumps(json_schema(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
