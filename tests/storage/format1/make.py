"""Made tests/storage/format1: run from a checkout of commit 21c9071 (the previous format), with an output folder:

git worktree add /tmp/prev 21c9071 && cd /tmp/prev && python <this file> <repo>/tests/storage/format1/data
"""

import json
import os
import shutil
import sys

sys.path.insert(0, os.getcwd())
from app import create_app
from tickets.context import current_services

out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)


def app():
    a = create_app({"TESTING": True, "TICKETS_DATA_DIR": out, "TICKETS_PURGE_INTERVAL": 10**9})
    return a, a.test_client()


a, c = app()
with a.app_context():
    org = current_services().clients.create("backoffice", "acme", "global")
    system = current_services().clients.create("system", None, "global")


def token(c, cred):
    r = c.post(
        "/security/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(cred["client_id"], cred["client_secret"]),
    )
    assert r.status_code == 200, r.json
    return {"Authorization": "Bearer " + r.json["access_token"]}


h = token(c, org)


def create(c, h, **body):
    r = c.post("/security/ticket", json=body, headers=h)
    assert r.status_code == 200, r.json
    return r.json


made = {}
made["multi"] = create(
    c,
    h,
    type="MULTI_USE_TICKET",
    ttl=2_592_000,
    properties={"customer_id": "c-42", "conference_id": "room-7", "note": "Grüße ✓"},
)
made["single_used"] = create(c, h, type="SINGLE_USE_TICKET", ttl=2_592_000, properties={"customer_id": "c-7"})
made["disabled"] = create(c, h, type="MULTI_USE_TICKET", ttl=2_592_000, properties={})
made["revoked"] = create(c, h, type="SINGLE_USE_TICKET", ttl=2_592_000, properties={})
made["scheduled"] = create(
    c,
    h,
    type="SCHEDULE_TICKET",
    ttl=2_592_000,
    properties={"scheduled_date": "2030-05-04T10:00:00+02:00", "title": "Mortgage advice"},
)
ex = c.post("/security/oauth/token", data={"grant_type": "ticket", "ticket": made["multi"]["id"]})
assert ex.status_code == 200
ticket_token = ex.json["access_token"]
assert (
    c.post(
        "/security/oauth/token", data={"grant_type": "ticket", "ticket": made["single_used"]["id"]}
    ).status_code
    == 200
)
assert c.post(f"/security/ticket/{made['disabled']['id']}/disable", headers=h).status_code == 204
assert c.post(f"/security/ticket/{made['revoked']['id']}/revoke", headers=h).status_code == 204
for _ in range(3):
    c.post("/security/oauth/token", data={"grant_type": "ticket", "ticket": "ZZZZZZZZZ"})

# A restart folds the journal into tickets.json; what follows stays in journal entries.
a, c = app()
h = token(c, org)
made["after_restart"] = create(
    c, h, type="MULTI_USE_TICKET", ttl=2_592_000, properties={"customer_id": "late"}
)
r = c.put(
    f"/security/ticket/{made['scheduled']['id']}",
    json={"properties": {"scheduled_date": "2030-05-04T11:00:00+02:00", "title": "Moved"}},
    headers={**h, "If-Match": '"0"'},
)
assert r.status_code == 200
deleted = create(c, h, type="MULTI_USE_TICKET", ttl=2_592_000, properties={})
assert c.delete(f"/security/ticket/{deleted['id']}", headers=h).status_code == 204
final = {
    name: c.get(f"/security/ticket/{t['id']}", headers=h).json
    for name, t in made.items()
    if name != "single_used"
}
client_token = h["Authorization"].split()[1]
manifest = {
    "made_by": "ticket service at commit 21c9071 (format 1: tickets.json snapshot plus tickets.<seq>.journal entries)",
    "clients": {"org": org, "system": system},
    "tickets": final,
    "used_single_use": made["single_used"]["id"],
    "deleted": deleted["id"],
    "ticket_token": ticket_token,
    "client_token": client_token,
}
json.dump(
    manifest,
    open(os.path.join(os.path.dirname(out.rstrip("/")), "manifest.json"), "w"),
    indent=1,
    ensure_ascii=False,
)
print(sorted(os.listdir(out)))
