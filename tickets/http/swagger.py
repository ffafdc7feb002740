"""Swagger UI's files from the swagger-ui-bundle package: no CDN, as on-prem installs are often offline."""

from __future__ import annotations

from flask import Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from tickets.http.api import SWAGGER_ASSETS


def init_swagger_assets(app: Flask) -> None:
    """Serve the bundle's files under SWAGGER_ASSETS, cached for a day."""

    @app.route(f"{SWAGGER_ASSETS}<path:filename>")
    def swagger_ui_asset(filename):
        return send_from_directory(str(swagger_ui_path), filename, max_age=86_400)
