"""Composition root (Reflex requires this module name): one ASGI app for UI, websocket and REST."""

import reflex as rx

from mlplatform.api.app import create_api
from mlplatform.api.prediction_edge import PredictionEdge
from mlplatform.config import get_settings
from mlplatform.services import prediction_log
from mlplatform.ui.app import add_pages

settings = get_settings()
app = rx.App(
    # Reflex mounts itself inside the FastAPI app, then the prediction edge goes around both
    api_transformer=[create_api(settings), lambda asgi: PredictionEdge(asgi, settings)],
    theme=rx.theme(accent_color="indigo", radius="medium"),
    stylesheets=["/styles.css"],
)
add_pages(app)
# a web worker stopping (SIGTERM) writes its queued prediction log rows first; the FastAPI app's
# own lifespan never runs here, because Reflex mounts it inside its own Starlette app
app.register_lifespan_task(prediction_log.flushed_at_shutdown)
