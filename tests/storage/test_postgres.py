"""PostgreSQL specifics: migrations, an unreachable server, the app on PostgreSQL, and `store copy` from TinyDB."""

from __future__ import annotations

import json
import threading
import time
from importlib import resources

import psycopg
import pytest

from app import create_app
from tests.conftest import bearer, exchange, fetch_token, make_client
from tickets.context import current_services
from tickets.storage import StorageError, open_storage
from tickets.storage.postgres import PgStore

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"
INTROSPECT = "/security/oauth/introspect"
HEALTH = "/security/health"


def migration_versions() -> list[int]:
    """The versions of the SQL files shipped in tickets/storage/migrations."""
    folder = resources.files("tickets.storage") / "migrations"
    return sorted(int(entry.name.split("_")[0]) for entry in folder.iterdir() if entry.name.endswith(".sql"))


def applied_versions(url: str) -> list[int]:
    """schema_migrations' versions, duplicates included."""
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def close_app(app) -> None:
    """Give back the app's database connections."""
    app.extensions["tickets"].storage.close()


@pytest.fixture
def apps():
    """A factory of apps; every one is closed at teardown."""
    made = []

    def build(data_dir, database_url: str = "", **extra):
        config = {"TESTING": True, "TICKETS_DATA_DIR": str(data_dir), **extra}
        if database_url:
            config["TICKETS_DATABASE_URL"] = database_url
        made.append(create_app(config))
        return made[-1]

    yield build
    for app in made:
        close_app(app)


# --- migrations ------------------------------------------------------------------------------------------------


def test_migrations_apply_once(database_url):
    """A fresh database gets every migration once; opening it again applies nothing and changes no version."""
    assert migration_versions()[0] == 1
    storage = open_storage("", database_url)
    storage.close()
    assert applied_versions(database_url) == migration_versions()
    again = PgStore(database_url)
    try:
        assert again.migrate() == []
    finally:
        again.close()
    storage = open_storage("", database_url)
    storage.close()
    assert applied_versions(database_url) == migration_versions()


def test_concurrent_migrations_apply_each_version_exactly_once(database_url):
    """Four nodes starting at once on a fresh database: no error, and each version applied by exactly one."""
    start = threading.Barrier(4)
    applied, errors = [], []

    def node():
        try:
            store = PgStore(database_url)
            try:
                start.wait(timeout=20)
                applied.extend(store.migrate())
            finally:
                store.close()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=node, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a migration hung"
    assert errors == []
    assert sorted(applied) == migration_versions()
    assert applied_versions(database_url) == migration_versions()
    storage = open_storage("", database_url)  # and the schema is usable
    try:
        assert storage.tickets.count() == 0
    finally:
        storage.close()


def test_unreachable_database_is_a_quick_storage_error():
    """Nobody listens at the URL: open_storage raises StorageError within a few seconds, not after a long wait."""
    outcome = {}

    def attempt():
        started = time.monotonic()
        try:
            open_storage("", UNREACHABLE)
            outcome["error"] = None
        except BaseException as error:  # noqa: BLE001 - inspected below
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "open_storage on a refused connection still had not failed after 5 s"
    assert isinstance(outcome["error"], StorageError), outcome["error"]
    assert "database" in str(outcome["error"])


# --- the app on PostgreSQL ------------------------------------------------------------------------------------


def test_api_smoke_on_postgres(apps, tmp_path, database_url):
    """Client token, create, get, exchange of a single-use ticket twice (NOT_FOUND the second time), health."""
    app = apps(tmp_path / "data", database_url)
    test_client = app.test_client()
    credentials = make_client(app)
    auth = bearer(fetch_token(test_client, credentials))
    created = test_client.post(
        "/security/ticket", json={"type": "SINGLE_USE_TICKET", "properties": {"customer_id": "c-1", "x": [1]}},
        headers=auth,
    )
    assert created.status_code == 200, created.json
    ticket_id = created.json["id"]
    got = test_client.get(f"/security/ticket/{ticket_id}", headers=auth)
    assert got.status_code == 200
    assert got.json == created.json
    first = exchange(test_client, ticket_id.lower())
    assert first.status_code == 200, first.json
    assert first.json["access_token"]
    second = exchange(test_client, ticket_id)
    assert second.status_code == 400
    assert second.json == {"error": "invalid_grant", "error_description": "NOT_FOUND"}
    assert test_client.get(f"/security/ticket/{ticket_id}", headers=auth).status_code == 404
    health = test_client.get("/security/health")
    assert health.status_code == 200
    assert health.json == {"status": "ok"}
    with psycopg.connect(database_url) as conn:  # the ticket really lives in the database
        assert conn.execute("SELECT count(*) FROM tickets WHERE id = %s", (ticket_id,)).fetchone()[0] == 1


def test_odd_properties_are_no_500_on_postgres(apps, tmp_path, database_url):
    """A property string holding U+0000 (valid JSON) is stored and returned as given, as on TinyDB, never a 500."""
    app = apps(tmp_path / "data", database_url, PROPAGATE_EXCEPTIONS=False)  # answer as in production
    test_client = app.test_client()
    auth = bearer(fetch_token(test_client, make_client(app)))
    properties = {"note": "nul:\u0000:end"}
    created = test_client.post("/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": properties},
                               headers=auth)
    assert created.status_code != 500, created.get_data(as_text=True)[:300]
    assert created.status_code == 200, created.json
    got = test_client.get(f"/security/ticket/{created.json['id']}", headers=auth)
    assert got.json["properties"] == properties


def allow_connections(admin_url: str, database_url: str, allowed: bool) -> None:
    """Open or shut a database to new sessions; shutting it also ends the sessions it has (an outage)."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def status_within(seconds: float, request) -> int:
    """The status code of `request()`, failing (not hanging) if no answer comes within `seconds`."""
    answer = {}
    thread = threading.Thread(target=lambda: answer.setdefault("status", request().status_code), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"no answer within {seconds} s"
    return answer["status"]


def test_health_is_a_quick_503_while_the_database_is_down(apps, tmp_path, database_url, postgres_admin_url):
    """While the database refuses connections, every /health answers 503 within seconds; 200 again once it is back."""
    app = apps(tmp_path / "data", database_url, PROPAGATE_EXCEPTIONS=False)
    test_client = app.test_client()
    assert test_client.get(HEALTH).status_code == 200
    allow_connections(postgres_admin_url, database_url, False)
    try:
        for attempt in range(3):
            assert status_within(5, lambda: test_client.get(HEALTH)) == 503, f"attempt {attempt}"
    finally:
        allow_connections(postgres_admin_url, database_url, True)
    deadline = time.monotonic() + 15
    while status_within(20, lambda: test_client.get(HEALTH)) != 200:
        assert time.monotonic() < deadline, "health did not come back after the database did"
        time.sleep(0.2)


# --- store copy -------------------------------------------------------------------------------------------------


def copy_command(app, url: str) -> dict:
    """`flask --app app store copy --to URL` on this app; its JSON output."""
    result = app.test_cli_runner().invoke(args=["store", "copy", "--to", url])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.output)


def test_store_copy_moves_an_install_to_postgres(apps, tmp_path, database_url):
    """After `store copy`, the PostgreSQL app knows the old clients, tickets and keys; a second copy adds nothing."""
    tiny = apps(tmp_path / "tiny")
    tiny_client = tiny.test_client()
    credentials = make_client(tiny)
    system = make_client(tiny, name="system", org=None)
    token_before = fetch_token(tiny_client, credentials)
    auth = bearer(token_before)

    def create(ticket_type="MULTI_USE_TICKET", properties=None, **fields):
        body = {"type": ticket_type, "properties": properties or {}, **fields}
        response = tiny_client.post("/security/ticket", json=body, headers=auth)
        assert response.status_code == 200, response.json
        return response.json["id"]

    ids = [
        create(properties={"customer_id": "c-1", "nested": {"a": [1, 2.5, None]}, "title": "Ünïcødé"}),
        create("SCHEDULE_TICKET", {"scheduled_date": "2030-05-01T10:00:00+02:00", "duration": 45}, ttl=3600),
        create(disabled=True),
        create("GENESYS_MULTI_USE_TICKET", length=12),
    ]
    assert tiny_client.post(f"/security/ticket/{ids[3]}/revoke", headers=auth).status_code == 204
    updated = tiny_client.put(f"/security/ticket/{ids[0]}", json={"properties": {"customer_id": "c-1", "v": 2}},
                              headers=auth)
    assert updated.status_code == 200, updated.json
    single = create("SINGLE_USE_TICKET")
    ticket_token = exchange(tiny_client, single).json["access_token"]
    multi_token = exchange(tiny_client, ids[0]).json  # a use: useCount and lastUsedAt are set
    assert "access_token" in multi_token, multi_token
    before = {ticket_id: tiny_client.get(f"/security/ticket/{ticket_id}", headers=auth) for ticket_id in ids}
    assert all(response.status_code == 200 for response in before.values())
    with tiny.app_context():
        stored_count = current_services().storage.tickets.count()
        tiny_kids = sorted(current_services().storage.keys.all())
    assert stored_count == len(ids) + 1  # the used-up single-use record is kept while its token lives
    added = json.loads(tiny.test_cli_runner().invoke(args=["webhooks", "add", "--url", "https://bo.example/h"]).output)

    report = copy_command(tiny, database_url)
    assert report == {"tickets": stored_count, "tickets_already_there": 0, "clients": 2, "keys": len(tiny_kids),
                      "webhooks": 1}

    pg = apps(tmp_path / "pg-node", database_url)  # its own, empty data folder: everything comes from the database
    pg_client = pg.test_client()
    with pg.app_context():
        assert current_services().storage.tickets.count() == stored_count
        copied = current_services().webhooks.get(added["id"])  # the endpoint, and the secret it signs with
        assert copied.url == added["url"] and copied.signing_secrets(time.time()) == [added["secret"]]
    # The old secrets still get tokens.
    fetch_token(pg_client, credentials)
    fetch_token(pg_client, system)
    # A token issued by the TinyDB install before the copy verifies here: the signing keys came along.
    jwks_kids = sorted(key["kid"] for key in pg_client.get("/security/.well-known/jwks.json").json["keys"])
    assert jwks_kids == tiny_kids
    for ticket_id, old in before.items():  # `auth` is the token issued by the TinyDB install
        new = pg_client.get(f"/security/ticket/{ticket_id}", headers=auth)
        assert new.status_code == 200, (ticket_id, new.json)
        assert new.json == old.json
        assert new.headers["ETag"] == old.headers["ETag"]
    listing = pg_client.get("/security/ticket", headers=auth, query_string={"page_size": 100})
    assert sorted(ticket["id"] for ticket in listing.json) == sorted(ids)
    # The used-up single-use ticket stays used up, and the token it gave stays active.
    assert pg_client.get(f"/security/ticket/{single}", headers=auth).status_code == 404
    assert exchange(pg_client, single).json["error_description"] == "NOT_FOUND"
    introspected = pg_client.post(INTROSPECT, data={"token": ticket_token},
                                  auth=(credentials["client_id"], credentials["client_secret"]))
    assert introspected.json["active"] is True, introspected.json
    # The PostgreSQL app signs with the copied key, and the TinyDB install accepts its tokens too.
    new_token = fetch_token(pg_client, credentials)
    assert tiny_client.get(f"/security/ticket/{ids[0]}", headers=bearer(new_token)).status_code == 200

    again = copy_command(tiny, database_url)
    assert again["tickets"] == 0
    assert again["tickets_already_there"] == stored_count
    with pg.app_context():
        assert current_services().storage.tickets.count() == stored_count
        assert sorted(current_services().storage.keys.all()) == tiny_kids



def test_a_list_is_served_by_the_organization_index(database_url):
    """The page and the count of one organization read its index range, not the table (SPEC section 3)."""
    from datetime import UTC, datetime, timedelta

    from tickets.core.domain import Ticket, TicketStatus, TicketType
    from tickets.core.ports import TicketQuery
    from tickets.storage.postgres import list_statements

    storage = open_storage("", database_url)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    try:
        for number in range(300):
            organization = "small" if number % 100 == 0 else "big"
            storage.tickets.add(Ticket(
                id=f"T{number:08d}".replace("0", "A").replace("1", "B"), type=TicketType.MULTI_USE_TICKET,
                organization_id=organization, user_id="u", properties={}, created_at=now + timedelta(seconds=number),
                expires_at=now + timedelta(hours=4),
            ))
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ANALYZE tickets")
            conn.execute("SET enable_seqscan = off")  # only an index can serve it then: is there one?
            for status in (None, TicketStatus.ACTIVE):
                query = TicketQuery("small", None, status, now, now - timedelta(days=7), 0, 20)
                for sql, parameters in list_statements(query):
                    plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}", parameters))
                    assert "tickets_organization_created" in plan, plan
                    assert "Seq Scan" not in plan, plan
        page = storage.tickets.list(TicketQuery("small", None, None, now, now - timedelta(days=7), 0, 20))
        assert page.total == 3 and len(page.tickets) == 3
    finally:
        storage.close()


def test_migration_2_fills_the_list_columns_of_existing_rows(database_url):
    """A database written before migration 2 (records only) lists correctly once migrated: nothing lost."""
    from datetime import UTC, datetime, timedelta

    from tickets.core.domain import Ticket, TicketType
    from tickets.core.ports import TicketQuery
    from tickets.storage.codec import ticket_to_record
    from tickets.storage.postgres import dump_record

    now = datetime(2030, 1, 1, tzinfo=UTC)
    first = (resources.files("tickets.storage") / "migrations" / "0001_initial.sql").read_text()
    old = [
        Ticket(id=ticket_id, type=TicketType.MULTI_USE_TICKET, organization_id=org, user_id="u",
               properties={"nul": "a\u0000b", "slash": "\\u0000"}, created_at=now + timedelta(seconds=n),
               expires_at=now + timedelta(hours=4), disabled=now if n == 1 else None)
        for n, (ticket_id, org) in enumerate([("AAAAAAAAA", "org-a"), ("BBBBBBBBB", "org-a"), ("CCCCCCCCC", "org-b")])
    ]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(first)
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL "
                     "DEFAULT now())")
        conn.execute("INSERT INTO schema_migrations (version) VALUES (1)")
        for ticket in old:
            conn.execute("INSERT INTO tickets (id, record, expires_at, consumed_at) VALUES (%s, %s, %s, NULL)",
                         (ticket.id, dump_record(ticket_to_record(ticket)), ticket.expires_at))
    storage = open_storage("", database_url)
    try:
        page = storage.tickets.list(TicketQuery("org-a", None, None, now, now - timedelta(days=7), 0, 20))
        assert page.tickets == old[:2] and page.total == 2
        from tickets.core.domain import TicketStatus
        disabled = storage.tickets.list(TicketQuery("org-a", None, TicketStatus.DISABLED, now, now, 0, 20))
        assert [t.id for t in disabled.tickets] == ["BBBBBBBBB"]
    finally:
        storage.close()
    assert applied_versions(database_url) == migration_versions()


@pytest.mark.parametrize("field, value", [("type", "NO_SUCH_TYPE"), ("createdAt", "yesterday"), ("userId", 7)])
def test_a_row_the_service_cannot_read_is_503_for_its_readers_only(apps, tmp_path, database_url, field, value):
    """A hand-edited record is corruption, named in the log, answered 503 (never a 500); other tickets and
    tenants go on (SPEC section 7)."""
    app = apps(tmp_path / "pg", database_url)
    client = app.test_client()
    headers = bearer(fetch_token(client, make_client(app)))
    bad = client.post("/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": {}}, headers=headers).json
    good = client.post("/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": {}}, headers=headers).json
    with psycopg.connect(database_url, autocommit=True) as conn:
        record = json.loads(conn.execute("SELECT record FROM tickets WHERE id = %s", (bad["id"],)).fetchone()[0])
        record[field] = value
        conn.execute("UPDATE tickets SET record = %s WHERE id = %s", (json.dumps(record), bad["id"]))
    for response in (
        client.get(f"/security/ticket/{bad['id']}", headers=headers),
        client.get("/security/ticket", headers=headers),
        exchange(client, bad["id"]),
    ):
        assert response.status_code == 503, response.data
        assert response.json["code"] == 503
    assert client.get(f"/security/ticket/{good['id']}", headers=headers).status_code == 200


def test_one_events_outcomes_settled_at_once_drop_it(database_url):
    """Two endpoints' deliveries of each event settled at the same moment, from two nodes: whichever commits
    last sees the other's outcome and drops the event, so none is kept and 'oldest pending' stays empty."""
    from datetime import UTC, datetime, timedelta

    from tickets.core.domain import EventType, Ticket, TicketEvent, TicketType
    from tickets.core.ports import Outcome

    nodes = [open_storage("", database_url), open_storage("", database_url)]
    now = datetime(2030, 1, 1, tzinfo=UTC)
    events = []
    try:
        for number in range(60):
            ticket = Ticket(
                id=f"E{number:08d}".replace("0", "A").replace("1", "B"), type=TicketType.MULTI_USE_TICKET,
                organization_id="org", user_id="u", properties={}, created_at=now, expires_at=now + timedelta(hours=4),
            )
            events.append(TicketEvent(f"msg_{number}", EventType.CREATED, now, ticket))
            nodes[0].tickets.add(ticket, [events[-1]])
        everyone = lambda organization, kind: ["ep_a", "ep_b"]  # noqa: E731
        assert len(nodes[0].outbox.due(time.time() + 1, everyone, 500)) == 120  # made due by this same call
        together = threading.Barrier(2)

        def settle_all(node, endpoint: str) -> None:
            for event in events:
                together.wait(10)
                node.outbox.settle([Outcome(event.id, endpoint, 1, "delivered", 200, time.time())])

        threads = [threading.Thread(target=settle_all, args=(node, endpoint))
                   for node, endpoint in ((nodes[0], "ep_a"), (nodes[1], "ep_b"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM webhook_events").fetchone()[0] == 0
        assert nodes[1].outbox.oldest() is None
        backlog = nodes[1].outbox.backlog(everyone)
        assert {endpoint: (entry["pending"], entry["last"]["result"]) for endpoint, entry in backlog.items()} == {
            "ep_a": (0, "delivered"), "ep_b": (0, "delivered"),
        }
    finally:
        for node in nodes:
            node.close()
