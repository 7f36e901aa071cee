"""What each confirmed change on the model page says before it happens, and the one registry call it
makes. Plain functions (no Reflex) so the page state stays a thin dispatcher."""

from __future__ import annotations

from dataclasses import dataclass

from mlplatform.errors import InvalidInput
from mlplatform.services import registry
from mlplatform.services.principals import Principal

PRODUCTION = "production"
VERSION_STATUS = {"deprecate": "deprecated", "archive": "archived", "activate": "active"}


@dataclass(frozen=True)
class Confirmation:
    title: str
    text: str
    button: str
    danger: bool = False


def confirmation(action: str, name: str, version: int, alias: str) -> Confirmation:
    texts = {
        "promote": Confirmation(
            f"Promote v{version} to production?",
            f"Calls to {name} without a version (and calls to its production alias) are answered by "
            f"v{version} from the next request on.", "Promote"),
        "deprecate": Confirmation(
            f"Deprecate v{version}?",
            "It keeps serving, but callers are told to move to another version.", "Deprecate"),
        "archive": Confirmation(
            f"Archive v{version}?",
            "An archived version never serves again until it is made active. Aliases must point "
            "elsewhere first.", "Archive", danger=True),
        "activate": Confirmation(f"Make v{version} active again?", "It serves again.", "Make active"),
        "delete_alias": Confirmation(
            f"Remove the alias “{alias}”?",
            f"Calls that name “{alias}” stop working; the version it points at is kept.", "Remove", danger=True),
        "delete_model": Confirmation(
            f"Delete the model {name}?",
            "It stops serving and leaves the list. Its versions and files are kept, and it can be "
            "restored from the Deleted filter.", "Delete model", danger=True),
        "restore_model": Confirmation(f"Restore {name}?", "It is listed and serves again.", "Restore"),
    }
    if action not in texts:
        raise InvalidInput(f"Unknown action {action[:40]!r}")
    return texts[action]


def apply(principal: Principal, name: str, owner: str | None, action: str, version: int, alias: str) -> str:
    """Make the change; returns what to tell the person."""
    if action == "promote":
        registry.set_alias(principal, name, PRODUCTION, version, owner=owner)
        return f"production → v{version}"
    if action in VERSION_STATUS:
        registry.update_version(principal, name, version, status=VERSION_STATUS[action], owner=owner)
        return f"v{version} is now {VERSION_STATUS[action]}"
    if action == "delete_alias":
        registry.delete_alias(principal, name, alias, owner=owner)
        return f"Alias “{alias}” removed"
    if action == "delete_model":
        registry.delete_model(principal, name, owner=owner)
        return f"{name} deleted"
    if action == "restore_model":
        registry.update_model(principal, name, status="active", owner=owner)
        return f"{name} restored"
    raise InvalidInput(f"Unknown action {action[:40]!r}")


def move_alias(principal: Principal, name: str, owner: str | None, alias: str, version: int) -> str:
    alias = alias.strip().lower()
    registry.set_alias(principal, name, alias, version, owner=owner)
    return f"{alias} → v{version}"


def rollback_choices(versions: list, current: int, previous: int) -> list[str]:
    """Where an alias can roll back to: first where it pointed before its last move, then the other
    servable versions older than its target, newest first."""
    status = {v.version: v.status for v in versions}  # one page of versions; others assumed servable
    servable = sorted((n for n, st in status.items() if st != "archived"), reverse=True)
    back = [previous] if previous and previous != current and status.get(previous) != "archived" else []
    return [str(n) for n in back + [n for n in servable if n < current and n != previous]]


def roll_back(principal: Principal, name: str, owner: str | None, alias: str, version: int, previous: int) -> str:
    """To the previous target: the registry's rollback (which remembers this move, so a second
    rollback undoes it); to another version: an ordinary move."""
    if version == previous:
        registry.rollback_alias(principal, name, alias, owner=owner)
    else:
        registry.set_alias(principal, name, alias, version, owner=owner)
    return f"{alias} rolled back to v{version}"


def parse_tags(text: str) -> list[str]:
    return [t.strip().lower() for t in text.replace("\n", ",").split(",") if t.strip()]


def save_details(principal: Principal, name: str, owner: str | None, description: str, tags: str) -> str:
    registry.update_model(principal, name, description=description, tags=parse_tags(tags), owner=owner)
    return f"{name} updated"
