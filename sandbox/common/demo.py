"""What the two sandboxes' `Demo` seeders must agree on, since neither can ask the other.

The webCRM demo delivery's lines name Uniconta item numbers, so both derive the items from one
fixed seed; and Anna Jensen (webCRM's default user) is an employee in Uniconta too, with the
same e-mail, so the demo shows the users flow linking an existing pair by e-mail.
"""

from __future__ import annotations

import random

from sandbox.common import fake

ITEMS_SEED = 2026
ITEM_COUNT = 6

ANNA = {"name": "Anna Jensen", "initials": "AJ", "email": "anna.jensen@example.dk", "title": "Salgschef",
        "mobile": "+45 20 30 40 50"}


def items() -> list[dict]:
    """The demo's catalogue: `fake.item` dicts with distinct numbers and names, the same on every call."""
    rng = random.Random(ITEMS_SEED)
    out: list[dict] = []
    while len(out) < ITEM_COUNT:
        item = fake.item(rng)
        if all(item["number"] != o["number"] and item["name"] != o["name"] for o in out):
            out.append(item)
    return out
