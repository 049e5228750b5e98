"""A validator for the subset of JSON Schema (2020-12) that
report.schema.json uses: type (one or a list), enum, const, properties,
required, additionalProperties (false or a schema), items, minimum,
minLength, oneOf and local $ref ("#/$defs/NAME").  Any other keyword in a schema
is an error, so the schema cannot silently use what this does not check."""

from __future__ import annotations

KNOWN = {"$schema", "$id", "$defs", "$ref", "title", "description", "type", "enum", "const",
         "properties", "required", "additionalProperties", "items", "minimum", "minLength", "oneOf"}

TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate(value, schema: dict) -> None:
    """Raise ValueError("at /path: what") on the first violation."""
    _check(value, schema, schema, "")


def _check(value, schema: dict, root: dict, where: str) -> None:
    unknown = set(schema) - KNOWN
    if unknown:
        raise ValueError(f"schema at {where or '/'} uses unsupported keywords {sorted(unknown)}")
    at = where or "/"
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/") or ref[8:] not in root.get("$defs", {}):
            raise ValueError(f"schema at {at}: unresolvable $ref {ref!r}")
        _check(value, root["$defs"][ref[8:]], root, where)
    if "oneOf" in schema:
        errors = []
        for option in schema["oneOf"]:
            try:
                _check(value, option, root, where)
            except ValueError as exc:
                errors.append(str(exc))
        if len(errors) != len(schema["oneOf"]) - 1:
            why = "; ".join(errors) if errors else "it matches more than one"
            raise ValueError(f"at {at}: matches none of the alternatives ({why})"
                             if errors else f"at {at}: {why}")
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[k](value) for k in kinds):
            raise ValueError(f"at {at}: expected {' or '.join(kinds)}, got {type(value).__name__}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"at {at}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        raise ValueError(f"at {at}: expected {schema['const']!r}, got {value!r}")
    if "minimum" in schema and TYPES["number"](value) and value < schema["minimum"]:
        raise ValueError(f"at {at}: {value} is below {schema['minimum']}")
    if "minLength" in schema and isinstance(value, str) and len(value) < schema["minLength"]:
        raise ValueError(f"at {at}: shorter than {schema['minLength']} characters")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise ValueError(f"at {at}: missing {key!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _check(item, props[key], root, f"{where}/{key}")
            elif extra is False:
                raise ValueError(f"at {at}: unexpected {key!r}")
            elif isinstance(extra, dict):
                _check(item, extra, root, f"{where}/{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], root, f"{where}/{i}")
