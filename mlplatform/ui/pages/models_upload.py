"""Upload a model file: drag and drop, progress, then the upload gate's verdict in plain words.

The file is streamed (a background event reading `rx.upload_files_chunk`) straight into the
registry service through a `ChunkPipe`: nothing is written under Reflex's public upload directory,
the size cap holds as the bytes arrive, the session is checked before any byte is read, and the
page stays responsive while a sandboxed model host test-loads the file.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import reflex as rx

from mlplatform.config import get_settings
from mlplatform.errors import InvalidInput, MLPlatformError, ModelRejected, PayloadTooLarge
from mlplatform.services import registry
from mlplatform.ui.errors import guarded
from mlplatform.ui.layout import shell
from mlplatform.ui.pages.models_common import human_bytes, refusal_sentence
from mlplatform.ui.pages.models_stream import ChunkPipe
from mlplatform.ui.state import SessionState

UPLOAD_ID = "model-file"
# Uploads running their service call at once in one web worker; more wait (the browser's upload
# is held back by the pipe's backpressure meanwhile).
_UPLOADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="model-upload")
EXTENSIONS = [".pkl", ".joblib", ".pickle"]
ACCEPT = {"application/octet-stream": EXTENSIONS}


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is larger than the {human_bytes(limit)} limit",
                           details={"limit_bytes": limit})


def _refusal(exc: MLPlatformError) -> tuple[str, str]:
    """(title, sentence) shown on the page for an upload that did not become a version."""
    if isinstance(exc, ModelRejected):
        return "The model was refused", refusal_sentence(exc.code, exc.message)
    return "The upload did not go through", exc.message


class ModelUploadState(SessionState):
    target_name: str = ""
    owner: str = ""  # an administrator uploading to another user's model (from ?owner=)
    description: str = ""
    phase: str = "idle"  # idle | uploading | checking | accepted | refused
    progress: int = 0
    verdict_title: str = ""
    verdict: str = ""
    verdict_code: str = ""
    new_version: int = 0
    new_estimator: str = ""
    accepted_name: str = ""
    accepted_href: str = ""

    @rx.var
    def busy(self) -> bool:
        return self.phase in ("uploading", "checking")

    @rx.event
    def read_query(self):
        query = self.router.url.query_parameters
        self.target_name, self.owner = query.get("name", ""), query.get("owner", "")
        self.description, self.phase, self.progress = "", "idle", 0

    @rx.event
    def set_target_name(self, value: str):
        self.target_name = value.strip().lower()

    @rx.event
    def set_description(self, value: str):
        self.description = value

    @rx.event
    def on_progress(self, progress: dict):
        self.progress = round(float(progress.get("progress", 0)) * 100)
        if self.progress >= 100 and self.phase == "uploading":
            self.phase = "checking"

    @rx.event
    def rejected(self, count: int):
        # Only the count comes over the websocket: the rejected File objects could exceed its frame cap.
        limit = human_bytes(get_settings().max_model_bytes)
        self.phase, self.verdict_title = "refused", "The file was not sent"
        self.verdict = (f"{count} file(s) could not be used: choose one {', '.join(EXTENSIONS)} file "
                        f"of at most {limit}.")

    @rx.event(background=True)
    @guarded
    async def upload(self, chunks: rx.UploadChunkIterator):
        async with self:
            principal = await self._principal()  # before reading a byte: no session, no upload
            name, description, owner = self.target_name, self.description, self.owner or None
            self.phase, self.progress, self.verdict, self.verdict_code = "uploading", 0, "", ""
        try:
            version, filename = await _upload(principal, (name, owner, description), chunks, self)
        except MLPlatformError as exc:
            async with self:
                self.phase = "refused"
                self.verdict_title, self.verdict = _refusal(exc)
                self.verdict_code = exc.code
            raise  # guarded: a toast as well (or the sign-in page for an expired session)
        except Exception:
            async with self:  # a bug, not a verdict: never leave the page spinning
                self.phase, self.verdict_title = "refused", "The upload did not go through"
                self.verdict = "The server hit an unexpected error (its log has the details). Try again."
                self.verdict_code = "error"
            raise  # logged by Reflex's backend exception handler
        async with self:
            self.phase, self.progress, self.accepted_name = "accepted", 100, name
            query = {"version": version.version, **({"owner": owner} if owner else {})}
            self.accepted_href = f"/models/{name}/?{urlencode(query)}"
            self.new_version, self.new_estimator = version.version, version.signature.get("estimator", "")
        return [rx.clear_selected_files(UPLOAD_ID),
                rx.toast.success(f"{name} v{version.version} is ready ({filename})")]

    async def _mark_checking(self) -> None:
        async with self:
            self.phase, self.progress = "checking", 100


async def _upload(principal, target: tuple[str, str | None, str], chunks: rx.UploadChunkIterator, state):
    """Stream the chunks into the registry service; returns (version, the file's name)."""
    iterator = aiter(chunks)
    first = await anext(iterator, None)
    if first is None:
        raise InvalidInput("Choose a model file first", details={"field": "file"})
    loop = asyncio.get_running_loop()
    pipe = ChunkPipe(loop)
    # the service reads the pipe in a thread of its own pool (an upload holds it for the whole
    # transfer and sandbox check, which must not starve the pool other handlers share)
    service = loop.run_in_executor(_UPLOADS, _store, principal, target, first.filename, pipe)
    try:
        if await _feed(first, iterator, pipe, get_settings().max_model_bytes):
            await state._mark_checking()
    except BaseException:
        pipe.fail(InvalidInput("The upload was interrupted"))  # never leave the reader waiting
        raise
    return await service, first.filename


def _store(principal, target: tuple[str, str | None, str], filename: str, pipe: ChunkPipe):
    name, owner, description = target
    try:
        version = registry.upload_version(principal, name, pipe, filename, description, owner=owner)
    finally:
        pipe.close()  # releases the feeder if the service stopped reading early
    return version


async def _feed(first, iterator, pipe: ChunkPipe, limit: int) -> bool:
    """Pass the browser's chunks to the pipe, stopping at the size cap. True if all bytes went."""
    received, chunk = 0, first
    while chunk is not None:
        if chunk.filename != first.filename:
            pipe.fail(InvalidInput("Upload one model file at a time", details={"field": "file"}))
            return False
        received += len(chunk.data)
        if received > limit:
            pipe.fail(_too_large(limit))
            return False
        if not await pipe.put(chunk.data):
            return False  # the service stopped reading (it refused the upload)
        chunk = await anext(iterator, None)
    pipe.finish()
    return True


def _field(label: str, html_for: str, control: rx.Component, hint: rx.Component | None = None) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", html_for=html_for, size="2", weight="medium"),
        control,
        *([hint] if hint is not None else []),
        spacing="1",
        width="100%",
    )


def _drop_zone(limit: int) -> rx.Component:
    return rx.upload(
        rx.vstack(
            rx.icon("file-up", size=32),
            rx.text("Drag a model file here, or click to choose one"),
            rx.text(f"{', '.join(EXTENSIONS)} · at most {human_bytes(limit)}", size="1", color_scheme="gray"),
            rx.foreach(rx.selected_files(UPLOAD_ID), lambda f: rx.badge(rx.icon("file", size=12), f, size="2")),
            align="center",
            spacing="2",
        ),
        id=UPLOAD_ID,
        accept=ACCEPT,
        max_size=limit,
        multiple=False,
        max_files=1,
        disabled=ModelUploadState.busy,
        on_drop_rejected=lambda rejections: ModelUploadState.rejected(rejections.length()),
        class_name="drop-zone",
    )


def _form(limit: int) -> rx.Component:
    return rx.card(
        rx.vstack(
            _field("Model name", "model-name",
                   rx.input(id="model-name", value=ModelUploadState.target_name,
                            on_change=ModelUploadState.set_target_name, placeholder="e.g. churn-classifier",
                            max_length=64, disabled=ModelUploadState.busy, width="100%", max_width="420px"),
                   rx.text(registry.NAME_RULES, size="1", color_scheme="gray")),
            _field("Description (optional)", "model-description",
                   rx.text_area(id="model-description", value=ModelUploadState.description,
                                on_change=ModelUploadState.set_description,
                                placeholder="What it predicts, what it was trained on", max_length=2000,
                                disabled=ModelUploadState.busy, width="100%", rows="3"),
                   rx.text("Kept with this version. A new model also takes it as its own description.",
                           size="1", color_scheme="gray")),
            _drop_zone(limit),
            rx.button(
                rx.icon("upload", size=16), "Upload and check",
                id="upload-model",
                loading=ModelUploadState.busy,
                disabled=(rx.selected_files(UPLOAD_ID).length() == 0) | (ModelUploadState.target_name == ""),
                on_click=ModelUploadState.upload(
                    rx.upload_files_chunk(upload_id=UPLOAD_ID, on_upload_progress=ModelUploadState.on_progress)
                ),
            ),
            spacing="4",
            width="100%",
        ),
        width="100%",
    )


def _status() -> rx.Component:
    return rx.match(
        ModelUploadState.phase,
        ("uploading", rx.vstack(rx.text("Uploading… ", ModelUploadState.progress, "%", size="2"),
                                rx.progress(value=ModelUploadState.progress, max=100, id="upload-progress"),
                                width="100%")),
        ("checking", rx.callout(
            "Uploaded. A sandboxed model host is loading the file and trying a prediction…",
            icon="shield-check", id="upload-checking")),
        ("accepted", rx.callout(
            rx.vstack(
                rx.text(ModelUploadState.accepted_name, " v", ModelUploadState.new_version,
                        " is ready: ", rx.code(ModelUploadState.new_estimator)),
                rx.link("Open the version →", id="open-new-version", href=ModelUploadState.accepted_href),
                spacing="1",
            ),
            icon="circle-check", color_scheme="green", id="upload-accepted")),
        ("refused", rx.callout(
            rx.vstack(rx.text(ModelUploadState.verdict_title, weight="bold"),
                      rx.text(ModelUploadState.verdict, id="upload-refusal"), spacing="1"),
            icon="octagon-alert", color_scheme="red", id="upload-refused")),
        rx.fragment(),
    )


def upload_page() -> rx.Component:
    limit = get_settings().max_model_bytes
    return shell(
        "Upload a model",
        rx.text("Each upload becomes the next version of the model (the model is created on its first "
                "upload). The file is test-loaded in a sandbox first: only a file that loads and predicts "
                "becomes a version.", color_scheme="gray"),
        _form(limit),
        _status(),
    )
