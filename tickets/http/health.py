"""GET /security/health: whether storage answers."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.health import HealthSchema
from tickets.context import current_services
from tickets.core.ports import StorageError
from tickets.http.docs import ANYONE, errors

blp = Blueprint("health", __name__, url_prefix="/security", description="Service health.")


@blp.route("/health")
class Health(MethodView):
    @blp.doc(operationId="getHealth", security=ANYONE)
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="Storage is unavailable (the reason is in the log).")
    @errors(blp, 400, e400="The Host header is not a trusted host.")
    def get(self):
        """Service health

        Whether the service can read its storage: {"status": "ok"}, else 503 {"status": "unavailable"}.
        """
        try:
            current_services().storage.check()
        except StorageError as error:  # which file and why is for the operator, not for anonymous callers
            current_app.logger.error("health: storage is unavailable: %s", error)
            return {"status": "unavailable"}, 503
        return {"status": "ok"}
