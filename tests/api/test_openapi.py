"""The OpenAPI document and the offline Swagger UI (SPEC section 3)."""

from __future__ import annotations

import json
import re
from urllib.parse import urljoin

import pytest

from tests.conftest import TICKET_FIELDS

OPENAPI = "/security/openapi.json"
SWAGGER = "/security/swagger-ui"
ENDPOINTS = [
    ("/security/ticket", "post"),
    ("/security/ticket", "get"),
    ("/security/ticket/{ticketId}", "get"),
    ("/security/ticket/{ticketId}", "put"),
    ("/security/ticket/{ticketId}", "delete"),
    ("/security/ticket/{ticketId}/disable", "post"),
    ("/security/ticket/{ticketId}/enable", "post"),
    ("/security/ticket/{ticketId}/revoke", "post"),
    ("/security/ticket/{ticketId}/event", "get"),
    ("/security/oauth/token", "post"),
    ("/security/oauth/introspect", "post"),
    ("/security/oauth/revoke", "post"),
    ("/security/.well-known/jwks.json", "get"),
    ("/security/.well-known/oauth-authorization-server", "get"),
    ("/security/health", "get"),
]
# SPEC section 9: every operation's operationId (the metadata's root copy is left out of the document).
OPERATION_IDS = {
    ("/security/ticket", "post"): "createTicket",
    ("/security/ticket", "get"): "listTickets",
    ("/security/ticket/{ticketId}", "get"): "getTicket",
    ("/security/ticket/{ticketId}", "put"): "updateTicket",
    ("/security/ticket/{ticketId}", "delete"): "deleteTicket",
    ("/security/ticket/{ticketId}/disable", "post"): "disableTicket",
    ("/security/ticket/{ticketId}/enable", "post"): "enableTicket",
    ("/security/ticket/{ticketId}/revoke", "post"): "revokeTicket",
    ("/security/ticket/{ticketId}/event", "get"): "getTicketEvent",
    ("/security/oauth/token", "post"): "issueToken",
    ("/security/oauth/introspect", "post"): "introspectToken",
    ("/security/oauth/revoke", "post"): "revokeToken",
    ("/security/.well-known/jwks.json", "get"): "getJwks",
    ("/security/.well-known/oauth-authorization-server", "get"): "getAuthorizationServerMetadata",
    ("/security/health", "get"): "getHealth",
}
PUBLIC = {"issueToken", "getJwks", "getAuthorizationServerMetadata", "getHealth"}
MANAGEMENT = [(path, method) for path, method in ENDPOINTS if path.startswith("/security/ticket")]
TICKET_TYPES = {
    "APPOINTMENTS_SCHEDULE_TICKET",
    "GENESYS_MULTI_USE_TICKET",
    "GENESYS_SCHEDULE_TICKET",
    "GENESYS_SINGLE_USE_TICKET",
    "MULTI_USE_TICKET",
    "SCHEDULE_TICKET",
    "SINGLE_USE_APPOINTMENTS_SCHEDULE_TICKET",
    "SINGLE_USE_SCHEDULE_TICKET",
    "SINGLE_USE_TICKET",
}


@pytest.fixture
def document(test_client) -> dict:
    """The served OpenAPI document."""
    response = test_client.get(OPENAPI)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def deref(document: dict, node: dict) -> dict:
    """Follow local $refs (#/components/...) until a concrete node."""
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation_parameters(document: dict, path: str, method: str) -> list[dict]:
    item = document["paths"][path]
    return [deref(document, p) for p in item.get("parameters", []) + item[method].get("parameters", [])]


def test_is_openapi_3(document):
    """The document is OpenAPI 3 with a title and version."""
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"]
    assert document["info"]["version"]


@pytest.mark.parametrize("path, method", ENDPOINTS)
def test_every_endpoint_is_described(document, path, method):
    """Every SPEC section 3 endpoint is in the document with at least one success response."""
    assert path in document["paths"], sorted(document["paths"])
    operation = document["paths"][path].get(method)
    assert operation is not None, f"{method.upper()} {path}"
    assert any(code.startswith(("2", "3")) for code in operation["responses"])


def test_no_undocumented_ticket_path_spelling(document):
    """The path parameter is spelled {ticketId} everywhere."""
    for path in document["paths"]:
        for name in re.findall(r"{([^}]+)}", path):
            assert name == "ticketId", path


@pytest.mark.parametrize("path, method", [(p, m) for p, m in MANAGEMENT if "{ticketId}" in p])
def test_ticket_id_is_a_path_parameter(document, path, method):
    """{ticketId} is declared as a required string path parameter."""
    parameters = [p for p in operation_parameters(document, path, method) if p["in"] == "path"]
    assert [p["name"] for p in parameters] == ["ticketId"]
    assert parameters[0]["required"] is True


@pytest.mark.parametrize(
    "path, method, status",
    [
        ("/security/ticket", "post", "200"),
        ("/security/ticket", "get", "200"),
        ("/security/ticket/{ticketId}", "get", "200"),
        ("/security/ticket/{ticketId}", "put", "200"),
        ("/security/ticket/{ticketId}", "delete", "204"),
        ("/security/ticket/{ticketId}/disable", "post", "204"),
        ("/security/ticket/{ticketId}/enable", "post", "204"),
        ("/security/ticket/{ticketId}/revoke", "post", "204"),
        ("/security/ticket/{ticketId}/event", "get", "200"),
        ("/security/ticket/{ticketId}/event", "get", "302"),
        ("/security/ticket/{ticketId}", "put", "412"),
    ],
)
def test_documented_statuses(document, path, method, status):
    """The statuses the API answers on success (and 412 for If-Match) are documented."""
    assert status in document["paths"][path][method]["responses"]


def test_bearer_security_scheme(document):
    """A bearer (JWT) security scheme is declared, and the management operations require it."""
    schemes = document["components"]["securitySchemes"]
    bearer_names = {
        name
        for name, scheme in schemes.items()
        if (scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer") or scheme["type"] == "oauth2"
    }
    assert any(schemes[name].get("scheme", "").lower() == "bearer" for name in bearer_names)
    for path, method in MANAGEMENT:
        security = document["paths"][path][method].get("security", document.get("security"))
        assert security, f"{method.upper()} {path}"
        named = {name for requirement in security for name in requirement}
        assert named & bearer_names, f"{method.upper()} {path}"
        assert {} not in security, f"{method.upper()} {path} allows anonymous access"


def test_ticket_schema(document):
    """The Ticket schema has exactly the reference's fields plus notBefore, useCount and lastUsedAt."""
    ticket = document["components"]["schemas"]["Ticket"]
    properties = ticket["properties"]
    assert set(properties) == TICKET_FIELDS
    for field in ("createdAt", "expiresAt", "disabled", "revoked", "notBefore", "lastUsedAt"):
        assert properties[field].get("format") == "date-time", field
    assert properties["expired"]["type"] == "boolean"
    assert properties["version"]["type"] == "integer"
    assert properties["useCount"]["type"] == "integer"
    assert properties["properties"]["type"] == "object"


def test_ticket_responses_use_ticket_schema(document):
    """Create, get and update answer a Ticket; the list answers an array of Ticket."""

    def schema_of(path, method, status="200"):
        content = document["paths"][path][method]["responses"][status]["content"]
        return content["application/json"]["schema"]

    for path, method in [
        ("/security/ticket", "post"),
        ("/security/ticket/{ticketId}", "get"),
        ("/security/ticket/{ticketId}", "put"),
    ]:
        assert schema_of(path, method)["$ref"].endswith("/Ticket")
    listed = schema_of("/security/ticket", "get")
    assert listed["type"] == "array"
    assert listed["items"]["$ref"].endswith("/Ticket")


def test_create_command_schema(document):
    """The create body is CreateTicketWebCommand: properties and type required, the nine types enumerated."""
    operation = document["paths"]["/security/ticket"]["post"]
    schema = deref(document, operation["requestBody"]["content"]["application/json"]["schema"])
    assert {"disabled", "length", "organizationId", "properties", "type"} <= set(schema["properties"])
    assert set(schema.get("required", [])) == {"properties", "type"}
    assert set(schema["properties"]["type"]["enum"]) == TICKET_TYPES


def test_update_command_schema(document):
    """The update body has properties (required) and organizationId, and no ttl."""
    operation = document["paths"]["/security/ticket/{ticketId}"]["put"]
    schema = deref(document, operation["requestBody"]["content"]["application/json"]["schema"])
    assert set(schema["properties"]) == {"organizationId", "properties"}
    assert schema.get("required") == ["properties"]


def test_list_parameters(document):
    """The list documents page, page_size, type and status (with its four values)."""
    parameters = {p["name"]: p for p in operation_parameters(document, "/security/ticket", "get")}
    assert {"page", "page_size", "type", "status"} <= set(parameters)
    assert set(parameters["status"]["schema"]["enum"]) == {"active", "disabled", "revoked", "expired"}


def test_event_parameters(document):
    """The event documents calendar = ics, google or outlook."""
    parameters = {p["name"]: p for p in operation_parameters(document, "/security/ticket/{ticketId}/event", "get")}
    assert set(parameters["calendar"]["schema"]["enum"]) == {"ics", "google", "outlook"}


def test_refs_resolve(document):
    """Every $ref in the document points at something that exists."""
    refs = re.findall(r'"\$ref":\s*"([^"]+)"', json.dumps(document))
    assert refs
    for ref in set(refs):
        assert ref.startswith("#/")
        deref(document, {"$ref": ref})


def test_swagger_ui_is_served_offline(test_client):
    """The Swagger UI page loads no remote assets, and every local asset it names is served."""
    response = test_client.get(SWAGGER)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"https?://", page)
    for cdn in ("unpkg", "jsdelivr", "cdnjs", "googleapis"):
        assert cdn not in page
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)
    assert any(asset.endswith(".js") for asset in assets)
    assert any(asset.endswith(".css") for asset in assets)
    for asset in assets:
        served = test_client.get(urljoin(SWAGGER, asset))
        assert served.status_code == 200, asset
        assert served.data, asset
    config_urls = re.findall(r"""data-spec-url\s*=\s*["']([^"']+)["']""", page)
    assert config_urls
    for url in config_urls:
        assert test_client.get(urljoin(SWAGGER, url)).status_code == 200, url


def test_swagger_ui_needs_no_token(test_client):
    """The docs and the document are public."""
    assert test_client.get(SWAGGER).status_code == 200
    assert test_client.get(OPENAPI).status_code == 200


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                yield path, method, operation


def test_every_operation_has_its_operation_id_a_summary_and_a_description(document):
    """SPEC section 9: the operationIds, and a summary and a description on each operation."""
    found = {(path, method): operation.get("operationId") for path, method, operation in operations(document)}
    assert found == OPERATION_IDS
    for path, method, operation in operations(document):
        assert operation.get("summary") and operation.get("description"), (method, path)


def test_info_servers_and_security(document):
    """A license and a contact; one relative server; public operations say security: []; scopes only on oauth2."""
    assert document["info"]["license"]["name"] and document["info"]["contact"]
    assert document["servers"] == [{"url": "/", "description": "This service."}]
    schemes = document["components"]["securitySchemes"]
    for _, _, operation in operations(document):
        if operation["operationId"] in PUBLIC:
            assert operation["security"] == [], operation["operationId"]
            continue
        assert operation["security"], operation["operationId"]
        for requirement in operation["security"]:
            for scheme, scopes in requirement.items():
                assert scopes == [] or schemes[scheme]["type"] == "oauth2", (operation["operationId"], scheme)


def test_the_event_is_text_calendar_and_its_redirect_says_where(document):
    responses = document["paths"]["/security/ticket/{ticketId}/event"]["get"]["responses"]
    assert list(responses["200"]["content"]) == ["text/calendar"]
    assert "Location" in responses["302"]["headers"]


@pytest.mark.parametrize(
    "operation_id, statuses",
    [
        ("createTicket", {"200", "400", "401", "403", "413", "422", "503"}),
        ("getTicket", {"200", "401", "403", "404", "503"}),
        ("updateTicket", {"200", "400", "401", "403", "404", "409", "412", "413", "422", "503"}),
        ("deleteTicket", {"204", "401", "403", "404", "412", "503"}),
        ("enableTicket", {"204", "401", "403", "404", "409", "503"}),
        ("getTicketEvent", {"200", "302", "400", "401", "403", "404", "409", "422", "503"}),
        ("issueToken", {"200", "400", "401", "413", "429", "503"}),
        ("introspectToken", {"200", "400", "401", "403", "413", "503"}),
        ("revokeToken", {"200", "400", "401", "403", "413", "503"}),
    ],
)
def test_every_answered_status_is_documented(document, operation_id, statuses):
    """Each status the operation answers is there, with a body schema (but 204's and 302's)."""
    operation = next(op for _, _, op in operations(document) if op["operationId"] == operation_id)
    assert statuses <= set(operation["responses"]), sorted(operation["responses"])
    for status in statuses - {"204", "302"}:
        response = deref(document, operation["responses"][status])
        if status == "200" and operation_id == "revokeToken":
            continue  # RFC 7009: an empty body
        assert response.get("content"), (operation_id, status)


def test_metadata_names_only_registered_introspection_auth_methods(test_client):
    metadata = test_client.get("/security/.well-known/oauth-authorization-server").json
    assert metadata["introspection_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    assert test_client.get("/.well-known/oauth-authorization-server/security").json == metadata
