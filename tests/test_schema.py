"""The JSON Schema editors use: every field described, every example accepted."""

from __future__ import annotations

from freezegen.spec.schema import json_schema


def _properties(schema, node, seen, where=""):
    """Yield (dotted path, property schema) for every property, following $refs once."""
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _properties(schema, schema["$defs"][name], seen, name)
    for key, value in node.get("properties", {}).items():
        yield f"{where}.{key}", value
        yield from _properties(schema, value, seen, f"{where}.{key}")
    for key in ("anyOf", "oneOf", "allOf"):
        for option in node.get(key, []):
            yield from _properties(schema, option, seen, where)
    yield from _properties(schema, node.get("items"), seen, where + "[]")


def test_every_field_has_a_description_for_editor_hovers():
    schema = json_schema()
    seen: set[str] = set()
    props = list(_properties(schema, schema, seen))
    missing = [path for path, prop in props if not prop.get("description")]
    assert missing == []
    assert len(seen) >= 10  # walked into the nested sections


def test_schema_enumerates_presets_and_gpus():
    schema = json_schema()
    model = schema["$defs"]["ModelSpec"]["properties"]["preset"]
    assert "gpt2-medium" in str(model) and "llama-3-8b" in str(model)
    assert "H100-80GB" in str(schema["$defs"]["HardwareSpec"]["properties"]["gpu"])
