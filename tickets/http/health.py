"""GET /security/health: whether storage answers."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.health import HealthSchema
from tickets.context import current_services
from tickets.core.ports import StorageError

blp = Blueprint("health", __name__, url_prefix="/security", description="Service health.")


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="Storage is not readable.")
    def get(self):
        """Service health"""
        try:
            current_services().storage.check()
        except StorageError as error:
            return {"status": "unavailable", "message": str(error)}, 503
        return {"status": "ok"}
