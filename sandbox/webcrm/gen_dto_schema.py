"""Generate `dto_schema.json`: the subset of webCRM's Swagger definitions that the sandbox serves.

The sandbox serves only a small part of the 600 kB Swagger, so the definitions it builds its DTOs
from are copied here verbatim (plus the Swagger's own `info` and a checksum of the source file); the
installed package carries this file, not the Swagger. Source: `swagger-v1.json` beside this file (where
it came from: README.md here). Re-run after replacing it:

    .venv/bin/python -m sandbox.webcrm.gen_dto_schema [path/to/swagger.json]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE / "swagger-v1.json"
TARGET = HERE / "dto_schema.json"

# Every definition a served route reads or writes (directly or through a $ref).
DEFINITIONS = [
    "TokenResponseDto",
    "OrganisationDto",
    "PersonDto",
    "UserDto",
    "DeliveryDto",
    "OpportunityDto",
    "QuotationLineDto",
    "QuotationLineUpdateDto",
    "QuotationLineLinkedDataItemDto",
    "QuotationLineLinkedSetupDto",
    "FieldMetadataDto",
    "FieldMetadataDropdownListDto",
    "OrganisationHookDto",
    "PersonHookDto",
    "UserHookDto",
    "DeliveryHookDto",
    "OpportunityHookDto",
    "QuotationLineHookDto",
]


def _refs(node: object) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def generate(source: Path) -> dict:
    raw = source.read_bytes()
    swagger = json.loads(raw)
    definitions = swagger["definitions"]
    wanted = list(DEFINITIONS)
    for name in DEFINITIONS:  # pull in anything referenced
        for ref in sorted(_refs(definitions[name])):
            if ref not in wanted:
                wanted.append(ref)
    return {
        "generated_by": "sandbox/webcrm/gen_dto_schema.py",
        "source": {
            "file": source.name,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "info": {k: swagger["info"].get(k) for k in ("title", "version")},
        },
        "definitions": {name: definitions[name] for name in wanted},
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else DEFAULT_SOURCE
    if not source.exists():
        print(f"Swagger file not found: {source}", file=sys.stderr)
        return 2
    data = generate(source)
    TARGET.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {TARGET} ({len(data['definitions'])} definitions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
