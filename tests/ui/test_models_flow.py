"""The registry's promise in a real browser: a newcomer sees how to upload, uploads a real model,
sees its version and signature, promotes it, uploads a second version, rolls production back, and
a malicious file is refused in plain words (and does nothing)."""

from __future__ import annotations

import os
import pickle
import re
import uuid
from pathlib import Path

import httpx
import joblib
from playwright.sync_api import Page, expect
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from tests.ui.test_account_flow import PASSWORD

FILE_INPUT = "#model-file input[type=file]"
# The upload gate waits for a fresh sandboxed host (a Python start plus imports, longer on a busy
# machine) before its verdict appears: a bound on waiting, not a speed requirement.
GATE_MS = 60_000


def iris_model(path: Path, kind: str) -> Path:
    data = load_iris(as_frame=True)
    labels = data.target_names[data.target]  # string classes, so the signature lists them
    if kind == "logreg":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    else:
        model = DecisionTreeClassifier(max_depth=3, random_state=0)
    joblib.dump(model.fit(data.data, labels), path)
    return path


class RunsACommand:
    """Unpickling this calls os.system: the textbook malicious pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def sign_in_fresh_user(page: Page, base: str) -> str:
    email = f"mona-{uuid.uuid4().hex[:8]}@example.com"
    assert httpx.post(f"{base}/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    page.goto(f"{base}/login/?next=/models/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    expect(page).to_have_url(f"{base}/models/")
    return email


def upload(page: Page, name: str | None, path: Path) -> None:
    if name is not None:
        page.fill("#model-name", name)
    page.set_input_files(FILE_INPUT, str(path))
    expect(page.locator("#model-file")).to_contain_text(path.name)
    page.click("#upload-model")


def version_row(page: Page, number: int):
    return page.locator(f'.version-row[data-version="{number}"]')


def promote(page: Page, number: int) -> None:
    version_row(page, number).get_by_role("button", name="Promote to production").click()
    expect(page.get_by_role("alertdialog")).to_contain_text(f"Promote v{number} to production?")
    page.click("#confirm-action")


def test_upload_promote_roll_back_and_refuse(page: Page, live_server: str, admin_account, tmp_path: Path):
    name = f"iris-{uuid.uuid4().hex[:6]}"
    sign_in_fresh_user(page, live_server)

    empty = page.locator("#models-empty")
    expect(empty).to_contain_text("Upload your first model")
    expect(page.locator("#example-python")).to_contain_text('joblib.dump(model, "model.joblib")')
    expect(page.locator("#example-curl")).to_contain_text(f"{live_server}/api/v1/models/iris/versions")
    expect(empty).to_contain_text("make demo")
    page.click("#empty-upload")
    expect(page).to_have_url(f"{live_server}/models/upload/")

    page.fill("#model-description", "Iris species from flower measurements")
    upload(page, name, iris_model(tmp_path / "iris.joblib", "logreg"))
    accepted = page.locator("#upload-accepted")
    expect(accepted).to_contain_text(f"{name} v1 is ready", timeout=GATE_MS)
    expect(accepted).to_contain_text("sklearn.pipeline.Pipeline")
    page.click("#open-new-version")
    expect(page).to_have_url(f"{live_server}/models/{name}/?version=1")

    expect(page.locator("#model-name-heading")).to_have_text(name)
    expect(page.locator("#model-description-text")).to_have_text("Iris species from flower measurements")
    expect(page.locator("#version-description")).to_have_text("Iris species from flower measurements")
    expect(version_row(page, 1)).to_contain_text("active")
    expect(page.locator("#signature-heading")).to_have_text("Signature of v1")
    expect(page.locator("#sig-estimator")).to_have_text("sklearn.pipeline.Pipeline")
    expect(page.locator("#sig-task")).to_have_text("classifier")
    expect(page.locator("#sig-steps")).to_contain_text("logisticregression")
    expect(page.locator("#sig-features")).to_contain_text("sepal length (cm)")
    expect(page.locator("#sig-classes")).to_contain_text("versicolor")
    expect(page.locator("#sig-example")).to_contain_text("petal width (cm)")
    expect(page.locator("#aliases-empty")).to_be_visible()

    promote(page, 1)
    expect(page.locator("#aliases")).to_contain_text("production → v1")
    expect(version_row(page, 1).locator(".version-aliases")).to_have_text("production")

    page.click("#upload-new-version")
    expect(page).to_have_url(re.compile(rf"/models/upload/\?name={name}$"))
    expect(page.locator("#model-name")).to_have_value(name)
    upload(page, None, iris_model(tmp_path / "iris-tree.joblib", "tree"))
    expect(page.locator("#upload-accepted")).to_contain_text(f"{name} v2 is ready", timeout=GATE_MS)
    page.click("#open-new-version")
    expect(page.locator("#sig-estimator")).to_have_text(re.compile(r"^sklearn\.tree\..*DecisionTreeClassifier$"))

    promote(page, 2)
    expect(page.locator("#aliases")).to_contain_text("production → v2")
    page.locator(".alias-row", has_text="production").get_by_role("button", name="Roll back").click()
    expect(page.locator("#rollback-target")).to_contain_text("1")
    page.click("#confirm-rollback")
    expect(page.locator("#aliases")).to_contain_text("production → v1")
    expect(page.locator(".alias-row", has_text="production")).to_contain_text("before: v2")
    expect(version_row(page, 1).locator(".version-aliases")).to_have_text("production")
    expect(version_row(page, 2).locator(".version-aliases")).to_have_text("")

    page.goto(f"{live_server}/models/")
    row = page.locator(".model-row", has_text=name)
    expect(row).to_contain_text("v2")
    expect(row).to_contain_text("production → v1")

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(RunsACommand(marker), protocol=4))
    page.click("#upload-link")
    upload(page, "evil", evil)
    refusal = page.locator("#upload-refused")
    expect(refusal).to_contain_text("The model was refused", timeout=GATE_MS)
    expect(refusal).to_contain_text("This file tries to use something that is not allowed in a model:")
    expect(refusal).to_contain_text("system")
    assert not marker.exists()
    page.goto(f"{live_server}/models/evil/")
    expect(page.locator("#model-missing")).to_contain_text("not found")


def upload_through_api(base: str, email: str, name: str, path: Path) -> None:
    token = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
    with path.open("rb") as f:
        answer = httpx.post(f"{base}/api/v1/models/{name}/versions", headers={"Authorization": f"Bearer {token}"},
                            files={"file": (path.name, f, "application/octet-stream")}, timeout=120)
    assert answer.status_code == 201, answer.text


def version_action(page: Page, number: int, item: str) -> None:
    version_row(page, number).get_by_role("button", name="Version actions").click()
    page.get_by_role("menuitem", name=item).click()


def test_lifecycle_actions_each_confirmed(page: Page, live_server: str, admin_account, tmp_path: Path):
    email = sign_in_fresh_user(page, live_server)
    name = f"flowers-{uuid.uuid4().hex[:6]}"
    upload_through_api(live_server, email, name, iris_model(tmp_path / "a.joblib", "logreg"))
    upload_through_api(live_server, email, name, iris_model(tmp_path / "b.joblib", "tree"))
    page.goto(f"{live_server}/models/{name}/")
    expect(page.locator("#signature-heading")).to_have_text("Signature of v2")
    version_row(page, 1).get_by_role("button", name="v1").click()
    expect(page.locator("#signature-heading")).to_have_text("Signature of v1")

    version_action(page, 2, "Set alias…")
    page.fill("#alias-name", "staging")
    page.click("#submit-alias")
    expect(page.locator("#aliases")).to_contain_text("staging → v2")

    version_action(page, 2, "Archive")
    expect(page.get_by_role("alertdialog")).to_contain_text("Archive v2?")
    page.click("#confirm-action")
    expect(page.get_by_text("move or delete them before archiving it")).to_be_visible()  # the registry's refusal
    expect(version_row(page, 2)).to_contain_text("active")

    page.locator(".alias-row", has_text="staging").get_by_role("button", name="Remove").click()
    page.click("#confirm-action")
    expect(page.locator("#aliases-empty")).to_be_visible()
    version_action(page, 2, "Archive")
    page.click("#confirm-action")
    expect(version_row(page, 2)).to_contain_text("archived")
    expect(version_row(page, 2).get_by_role("button", name="Promote to production")).to_have_count(0)
    version_action(page, 1, "Deprecate")
    page.click("#confirm-action")
    expect(version_row(page, 1)).to_contain_text("deprecated")

    page.click("#edit-model")
    page.fill("#edit-description", "Flowers, two ways")
    page.fill("#edit-tags", "tabular, iris")
    page.click("#save-model")
    expect(page.locator("#model-description-text")).to_have_text("Flowers, two ways")
    expect(page.locator("#model-tags")).to_contain_text("tabular, iris")

    page.click("#delete-model")
    expect(page.get_by_role("alertdialog")).to_contain_text(f"Delete the model {name}?")
    page.click("#confirm-action")
    expect(page).to_have_url(f"{live_server}/models/")
    expect(page.locator(".model-row", has_text=name)).to_have_count(0)
    page.goto(f"{live_server}/models/{name}/")
    expect(page.locator("#model-name-heading")).to_have_text(name)
    page.click("#restore-model")
    page.click("#confirm-action")
    expect(page.locator("#delete-model")).to_be_visible()
    page.goto(f"{live_server}/models/")
    page.locator(".model-row", has_text=name).get_by_text("iris", exact=True).click()  # a tag filters the list
    expect(page.locator("#tag-filter")).to_contain_text("iris")
    expect(page.locator(".model-row")).to_have_count(1)
