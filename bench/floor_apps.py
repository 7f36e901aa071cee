"""The two floors of the prediction benchmark: bare ASGI apps, no framework, served by granian.

    granian --interface asgi --workers 2 bench.floor_apps:floor_a
    BENCH_MODEL_PATH=lr.joblib granian --interface asgi --workers 2 bench.floor_apps:floor_b

floor_a reads the whole request body and answers a constant JSON: the cost of HTTP on this machine.
floor_b parses the MLflow `dataframe_split` body (orjson, straight into one float64 array) and calls
the model's `predict` in the worker process: the least any server can do for the same answer.
Both run under granian with the platform's web-worker count because the platform's web app is
served by granian (through Reflex) too: the gap to the platform is then the platform's own work,
not a different HTTP server.
"""

from __future__ import annotations

import os

import joblib
import numpy as np
import orjson

CONSTANT = orjson.dumps({"predictions": [0]})
HEADERS = [(b"content-type", b"application/json")]


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": HEADERS + [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def floor_a(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    await _read_body(receive)
    await _answer(send, 200, CONSTANT)


_model = None


def _loaded_model():
    global _model
    if _model is None:
        _model = joblib.load(os.environ["BENCH_MODEL_PATH"])
    return _model


def predict_body(model, body: bytes) -> bytes:
    frame = orjson.loads(body)["dataframe_split"]
    X = np.asarray(frame["data"], dtype=np.float64)
    return orjson.dumps({"predictions": model.predict(X).tolist()})


async def floor_b(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        _loaded_model()
        return await _lifespan(receive, send)
    body = await _read_body(receive)
    try:
        answer = predict_body(_loaded_model(), body)
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
        return await _answer(send, 400, orjson.dumps({"error": str(exc)}))
    await _answer(send, 200, answer)
