"""Installing the webhooks of both systems so they point at our receiver (idempotent).

webCRM hooks are created per entity and event type (reference §8); Uniconta
Change-URL rows per table (reference §3), with the token carried in the
row's Argument, since Uniconta cannot sign its calls. The URL shapes are the
guide's: Debtor → /webhook/<c>/uniconta, InvItem → /webhook/<c>/invitems.
"""

from __future__ import annotations

from sync.clients.uniconta import UnicontaClient
from sync.clients.webcrm import HOOK_EVENT_TYPES, WebcrmClient
from sync.config import Connection, Settings

WEBCRM_HOOKS = {"organisations": ["Organisations"], "orders": ["Deliveries", "QuotationLines"],
                "users": ["Users"], "persons": ["Persons"]}
UNICONTA_TABLES = {"organisations": [("Debtor", 50)], "items": [("InvItem", 23)], "persons": [("Contact", 60)],
                   "users": [("Employee", 95)]}
CHANGE_EVENT_ENTITY = "TableChangeEventClient"


def install_hooks(conn: Connection, webcrm: WebcrmClient, uniconta: UnicontaClient, receiver: str) -> list[str]:
    """Create the hooks this connection's enabled flows need; returns what was created."""
    token = conn.webhook.tokens[0].reveal()
    base = receiver.rstrip("/")
    created: list[str] = []
    webcrm_url = f"{base}/webhook/{conn.id}/webcrm?token={token}"
    for flow, entities in WEBCRM_HOOKS.items():
        if not conn.enabled(flow):
            continue
        for entity in entities:
            existing = {(h.get("TargetUrl"), h.get("EventType")) for h in webcrm.hooks(entity)}
            for event_type in HOOK_EVENT_TYPES:
                if (webcrm_url, event_type) not in existing:
                    webcrm.create_hook(entity, webcrm_url, event_type)
                    created.append(f"webcrm {entity} {event_type}")
    have = {(int(r.get("TableId") or 0), r.get("Url")) for r in uniconta.odata(CHANGE_EVENT_ENTITY)}
    for flow, tables in UNICONTA_TABLES.items():
        if not conn.enabled(flow):
            continue
        for table, table_id in tables:
            path = "invitems" if table == "InvItem" else "uniconta"
            url = f"{base}/webhook/{conn.id}/{path}"
            if (table_id, url) not in have:
                uniconta.insert(CHANGE_EVENT_ENTITY, {"TableId": table_id, "Url": url, "Argument": f"token={token}",
                                                      "UsePost": False})
                created.append(f"uniconta {table}")
    return created


def install_demo_hooks(settings: Settings, receiver: str) -> list[str]:
    """Point the sandboxes' webhooks at the local receiver for the built-in demo connection."""
    created: list[str] = []
    for conn in settings.connections.values():
        webcrm = WebcrmClient(conn.webcrm.base_url, conn.webcrm.auth_code.reveal())
        uniconta = UnicontaClient(conn.uniconta.base_url, conn.uniconta.company_id, conn.uniconta.username,
                                  conn.uniconta.password.reveal())
        with webcrm, uniconta:
            created += install_hooks(conn, webcrm, uniconta, receiver)
    return created
