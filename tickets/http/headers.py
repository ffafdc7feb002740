"""Headers every answer carries, and those of a few (SPEC section 11)."""

from __future__ import annotations

from flask import Flask, Response, request

# Swagger UI: scripts and styles from this origin only (its React code sets style attributes,
# hence 'unsafe-inline' for styles alone), images also as data: URIs, never framed.
SWAGGER_UI_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The join page (SPEC section 12): its own script and style only, nothing inline, never framed; its path holds
# the ticket id, which must not travel on as a Referer, be cached or be indexed.
JOIN_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}
JOIN_PAGE_PATH = "/t/"
# Token, introspection and revocation answers hold (or deny) credentials: never cached (RFC 6749 5.1).
NO_STORE_PATHS = ("/security/oauth/",)


def init_headers(app: Flask) -> None:
    """nosniff on every answer; no-store on the OAuth endpoints; a CSP on Swagger UI and on the join page."""
    swagger_ui = app.config["OPENAPI_URL_PREFIX"] + app.config["OPENAPI_SWAGGER_UI_PATH"]

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.path.startswith(NO_STORE_PATHS):
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"
        elif request.path == swagger_ui:
            response.headers["Content-Security-Policy"] = SWAGGER_UI_POLICY
            response.headers["X-Frame-Options"] = "DENY"
        elif request.path.startswith(JOIN_PAGE_PATH):
            response.headers.update(JOIN_PAGE_HEADERS)
        return response
