"""The model page's state: the model, its versions and aliases, the selected version's signature,
and every change made from the page (each one confirmed first)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

import reflex as rx

from mlplatform.errors import NotFound
from mlplatform.services import registry
from mlplatform.ui.errors import guarded
from mlplatform.ui.pages import models_actions as actions
from mlplatform.ui.pages.models_common import AliasRef, human_bytes, seconds, when
from mlplatform.ui.state import SessionState

MAX_SHOWN = 200  # features / classes listed on the page; the rest are counted
VERSION_PAGE = 50


def model_fields(model) -> dict:
    return {"name": model.name, "description": model.description, "tags": ", ".join(model.tags),
            "status": model.status.value, "owner": model.owner_email,
            "created": when(model.created_at), "updated": when(model.updated_at)}


@dataclass
class AliasRow(AliasRef):
    previous: int  # where it pointed before its last move; 0 if it never moved
    updated: str


def alias_row(alias) -> AliasRow:
    return AliasRow(alias.alias, alias.version, alias.previous_version or 0, when(alias.updated_at))


@dataclass
class VersionRow:
    version: int
    status: str
    created: str
    size: str
    sha256: str
    sha_short: str
    estimator: str
    load: str
    memory: str
    aliases: list[str]
    description: str
    filename: str
    format: str


def version_row(version) -> VersionRow:
    return VersionRow(
        version=version.version,
        status=version.status.value,
        created=when(version.created_at),
        size=human_bytes(version.size_bytes),
        sha256=version.sha256,
        sha_short=version.sha256[:12],
        estimator=str((version.signature or {}).get("estimator", "")).rpartition(".")[2],
        load=seconds(version.load_seconds),
        memory=human_bytes(version.memory_bytes),
        aliases=sorted(version.aliases),
        description=version.description,
        filename=version.filename,
        format=version.format,
    )


def _seen_entry(version) -> dict:
    return {"row": asdict(version_row(version)), "signature": version.signature or {}}


def signature_fields(signature: dict) -> dict:
    """The signature as flat, typed values the page can render (lists of string dicts)."""
    features = signature.get("features") or []
    classes = [str(c) for c in (signature.get("classes") or [])]
    return {
        "sig_estimator": str(signature.get("estimator", "")),
        "sig_task": str(signature.get("task", "")),
        "sig_input": str(signature.get("input_kind", "")),
        "sig_n_features": int(signature.get("n_features") or len(features)),
        "sig_steps": [{"name": str(s.get("name", "")), "estimator": str(s.get("estimator", ""))}
                      for s in signature.get("steps") or []],
        "sig_features": [{"name": str(f.get("name", "")), "dtype": str(f.get("dtype", "")),
                          "categories": ", ".join(map(str, f["categories"])) if f.get("categories") else "—"}
                         for f in features[:MAX_SHOWN]],
        "sig_classes": classes[:MAX_SHOWN],
        # Wide array models list only their first features in the signature: count from n_features.
        "sig_more": max(0, max(int(signature.get("n_features") or 0), len(features)) - MAX_SHOWN)
        + max(0, len(classes) - MAX_SHOWN),
        "sig_methods": [{"name": k, "available": "yes" if v else "no"}
                        for k, v in (signature.get("methods") or {}).items()],
        "sig_example": json.dumps(signature.get("example") or {}, indent=2, default=str),
        "sig_checked": " · ".join(f"{k} {v}" for k, v in (signature.get("versions") or {}).items()),
    }


class ModelDetailState(SessionState):
    model: dict[str, str] = {}
    owner_query: str = ""  # "?owner=<email>" when an administrator looks at someone else's model
    versions: list[VersionRow] = []
    version_total: int = 0
    version_page: int = 1
    aliases: list[AliasRow] = []
    selected: int = 0
    missing: str = ""  # the not-found message, shown instead of the page
    sig_estimator: str = ""
    sig_task: str = ""
    sig_input: str = ""
    sig_n_features: int = 0
    sig_steps: list[dict[str, str]] = []
    sig_features: list[dict[str, str]] = []
    sig_classes: list[str] = []
    sig_more: int = 0
    sig_methods: list[dict[str, str]] = []
    sig_example: str = ""
    sig_checked: str = ""
    current: dict[str, str] = {}  # the selected version's facts beside its signature
    _seen: dict[int, dict] = {}  # version -> {"row": version_row as dict, "signature": ...}
    # the change waiting for confirmation (see models_actions.confirmation)
    action: str = ""
    action_version: int = 0
    action_alias: str = ""
    confirm_title: str = ""
    confirm_text: str = ""
    confirm_button: str = ""
    confirm_danger: bool = False
    # dialogs with inputs: set an alias, roll an alias back, edit description and tags
    alias_version: int = 0
    rollback_alias: str = ""
    rollback_previous: int = 0
    rollback_choices: list[str] = []
    rollback_target: str = ""
    editing: bool = False

    @rx.var
    def version_pages(self) -> int:
        return max(1, -(-self.version_total // VERSION_PAGE))

    def _target(self) -> tuple[str, str | None]:
        """(model name, owner email or None) from the URL: /models/<name>/?owner=<email>."""
        parts = [p for p in self.router.url.path.split("/") if p]
        name = parts[1] if len(parts) > 1 and parts[0] == "models" else ""
        return name, self.router.url.query_parameters.get("owner") or None

    async def _reload(self) -> None:
        principal, (name, owner) = await self._principal(), self._target()
        model = await asyncio.to_thread(registry.get_model, principal, name, owner=owner)
        page = await asyncio.to_thread(registry.list_versions, principal, name, self.version_page, VERSION_PAGE,
                                       owner=owner)
        aliases = await asyncio.to_thread(registry.list_aliases, principal, name, owner=owner)
        self.model, self.missing = model_fields(model), ""
        self.owner_query = "?" + urlencode({"owner": owner}) if owner else ""
        self.versions, self.version_total = [version_row(v) for v in page.items], page.total
        self.aliases = [alias_row(a) for a in aliases]
        self._seen = {v.version: _seen_entry(v) for v in page.items}
        if not self.selected and page.items:
            self.selected = page.items[0].version
        await self._show_signature()

    async def _show_signature(self) -> None:
        if self.selected and self.selected not in self._seen:  # linked to a version on another page
            principal, (name, owner) = await self._principal(), self._target()
            try:
                version = await asyncio.to_thread(registry.get_version, principal, name, self.selected, owner=owner)
                self._seen[version.version] = _seen_entry(version)
            except NotFound:  # a stale ?version= link: show the newest instead
                self.selected = self.versions[0].version if self.versions else 0
        seen = self._seen.get(self.selected, {"row": {}, "signature": {}})
        self.current = {k: str(v) for k, v in seen["row"].items() if k != "aliases"}
        for key, value in signature_fields(seen["signature"]).items():
            setattr(self, key, value)

    @rx.event
    @guarded
    async def load(self):
        wanted = self.router.url.query_parameters.get("version", "")
        self.selected = int(wanted) if wanted.isdigit() and len(wanted) < 10 else 0
        self.model, self.versions, self.aliases, self.version_page, self.missing = {}, [], [], 1, ""
        self._close_dialogs()
        try:
            await self._reload()
        except NotFound as exc:
            self.missing = exc.message

    @rx.event
    @guarded
    async def select(self, version: int):
        self.selected = version
        await self._show_signature()

    @rx.event
    @guarded
    async def turn_version_page(self, delta: int):
        self.version_page = min(max(self.version_page + delta, 1), self.version_pages)
        await self._reload()

    async def _run(self, change, *args):
        """Make one change through the registry, reload the page, say what happened."""
        principal, (name, owner) = await self._principal(), self._target()
        message = await asyncio.to_thread(change, principal, name, owner, *args)
        await self._reload()
        return rx.toast.success(message)

    @rx.event
    def ask(self, action: str, version: int, alias: str):
        said = actions.confirmation(action, self.model.get("name", ""), version, alias)
        self.action, self.action_version, self.action_alias = action, version, alias
        self.confirm_title, self.confirm_text = said.title, said.text
        self.confirm_button, self.confirm_danger = said.button, said.danger

    def _close_dialogs(self) -> None:
        self.action, self.alias_version, self.rollback_alias, self.editing = "", 0, "", False

    @rx.event
    def cancel(self):
        self._close_dialogs()

    @rx.event
    def dialog_changed(self, is_open: bool):
        if not is_open:  # Escape or a click outside closes a dialog like Cancel does
            self._close_dialogs()

    @rx.event
    @guarded
    async def confirm(self):
        action, self.action = self.action, ""
        if action == "delete_model":  # the page goes away with the model: back to the list
            principal, (name, owner) = await self._principal(), self._target()
            message = await asyncio.to_thread(actions.apply, principal, name, owner, action, 0, "")
            return [rx.redirect("/models/"), rx.toast.success(message)]
        return await self._run(actions.apply, action, self.action_version, self.action_alias)

    @rx.event
    def open_alias(self, version: int):
        self.alias_version = version

    @rx.event
    @guarded
    async def submit_alias(self, form: dict):
        version, self.alias_version = self.alias_version, 0
        return await self._run(actions.move_alias, str(form.get("alias", "")), version)

    @rx.event
    def open_rollback(self, alias: str):
        row = next((a for a in self.aliases if a.alias == alias), None)
        if row is None:
            return
        self.rollback_alias, self.rollback_previous = alias, row.previous
        self.rollback_choices = actions.rollback_choices(self.versions, row.version, row.previous)
        self.rollback_target = self.rollback_choices[0] if self.rollback_choices else ""

    @rx.event
    def set_rollback_target(self, value: str):
        self.rollback_target = value

    @rx.event
    @guarded
    async def confirm_rollback(self):
        alias, self.rollback_alias = self.rollback_alias, ""
        return await self._run(actions.roll_back, alias, int(self.rollback_target), self.rollback_previous)

    @rx.event
    def open_edit(self):
        self.editing = True

    @rx.event
    @guarded
    async def submit_edit(self, form: dict):
        self.editing = False
        return await self._run(actions.save_details, str(form.get("description", "")), str(form.get("tags", "")))
