"""The JSON Schema editors use: every field described, every example accepted."""

from __future__ import annotations

from freezegen.spec.schema import json_schema


def _properties(schema, node, where=""):
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                return
            seen.add(name)
            yield from _properties(schema, schema["$defs"][name], name)
        for key, value in node.get("properties", {}).items():
            yield f"{where}.{key}", value
            yield from _properties(schema, value, f"{where}.{key}")
        for key in ("anyOf", "oneOf", "allOf"):
            for option in node.get(key, []):
                yield from _properties(schema, option, where)
        if isinstance(node.get("items"), dict):
            yield from _properties(schema, node["items"], where + "[]")


seen: set[str] = set()


def test_every_field_has_a_description_for_editor_hovers():
    seen.clear()
    schema = json_schema()
    missing = [path for path, prop in _properties(schema, schema) if not prop.get("description")]
    assert missing == []
    assert len(seen) >= 10  # walked into the nested sections


def test_schema_enumerates_presets_and_gpus():
    schema = json_schema()
    model = schema["$defs"]["ModelSpec"]["properties"]["preset"]
    assert "gpt2-medium" in str(model) and "llama-3-8b" in str(model)
    assert "H100-80GB" in str(schema["$defs"]["HardwareSpec"]["properties"]["gpu"])
