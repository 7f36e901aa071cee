"""The model page's Test tab in a real browser: an uploaded model answers through the form (prefilled
from its signature) and through a pasted body, with probabilities, latency and the cache flag; a
refusal names the column and row; and the copied snippets run as they are, with a key made there."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pandas as pd
from playwright.sync_api import Page, expect

from tests.prediction_support import model, model_file
from tests.ui.test_models_flow import sign_in_fresh_user, upload_through_api

# The first prediction waits for a model host to load the version (a fresh process on a busy
# machine): a bound on waiting, not a speed requirement.
HOST_MS = 60_000


def expected(rows: list[dict]) -> list[str]:
    """The model's own answers for these rows, as the page shows them."""
    return [json.dumps(p.item()) for p in model("mixed").predict(pd.DataFrame(rows))]


def copied(page: Page, holding: str) -> str:
    """Click Copy and read the clipboard once it holds the new snippet (the copy is asynchronous)."""
    page.click("#copy-snippet")
    page.wait_for_function("async (text) => (await navigator.clipboard.readText()).includes(text)", arg=holding)
    return page.evaluate("navigator.clipboard.readText()")


def run(command: str) -> dict:
    """Run a copied curl command in a shell, as its reader would."""
    done = subprocess.run(["bash", "-c", command + " --silent --show-error"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_form_paste_snippets_and_a_key(page: Page, live_server: str, admin_account, tmp_path: Path):
    email = sign_in_fresh_user(page, live_server)
    name = f"mixed-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "mixed.joblib"
    path.write_bytes(model_file("mixed"))  # size (float), color (categories), n (int categories), flag (bool)
    upload_through_api(live_server, email, name, path)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)

    page.goto(f"{live_server}/models/{name}/")
    page.click("#test-tab")
    expect(page.locator("#serving-version")).to_have_text("answered by v1")
    expect(page.locator("#test-version")).to_contain_text("Default: newest active version")
    expect(page.locator("#field-0")).to_have_value("0.0")  # the signature's example row
    expect(page.locator("#field-1")).to_have_text("blue")  # a select of the training categories
    expect(page.locator("#field-2")).to_have_text("1")
    expect(page.locator("#field-3")).to_have_attribute("role", "switch")
    expect(page.locator("#field-3")).to_have_attribute("data-state", "unchecked")

    page.fill("#field-0", "4.5")
    page.click("#field-1")
    page.get_by_role("option", name="green").click()
    expect(page.locator("#field-1")).to_have_text("green")
    page.click("#field-3")
    expect(page.locator("#field-3")).to_have_attribute("data-state", "checked")
    page.click("#predict")
    expect(page.locator("#cache-flag")).to_have_text("cache miss", timeout=HOST_MS)
    row = {"size": 4.5, "color": "green", "n": 1, "flag": True}
    expect(page.locator("#predictions .prediction")).to_have_text(expected([row]))
    expect(page.locator("#answer-version")).to_have_text("v1")
    expect(page.locator("#test-latency")).to_contain_text(re.compile(r"ms in all · model \d+\.\d ms"))
    expect(page.locator("#proba-chart .xtick")).to_have_count(2)  # a bar per class: 0 and 1
    page.click("#predict")
    expect(page.locator("#cache-flag")).to_have_text("cache hit")
    expect(page.locator("#test-latency")).to_contain_text("the model did not run")

    page.locator("#test-mode").get_by_role("radio", name="JSON / CSV").click()
    body = page.locator("#test-body")
    expect(body).to_have_value(re.compile(r'"dataframe_split"'))
    body.fill(json.dumps({"dataframe_records": [{**row, "color": "purple"}]}))
    page.click("#predict")
    expect(page.locator("#test-error")).to_contain_text("'purple' is not one of the categories")
    expect(page.locator("#test-error-where")).to_have_text("At column 'color', row 0")
    rows = [row, {"size": 0.5, "color": "red", "n": 3, "flag": False}]
    body.fill(json.dumps({"dataframe_records": rows}))
    page.click("#predict")
    expect(page.locator("#answer-count")).to_have_text("2 prediction(s)")
    expect(page.locator("#predictions .prediction")).to_have_text(expected(rows))
    expect(page.locator("#cache-flag")).to_have_text("cache miss")

    page.locator("#snippet-kind").get_by_role("radio", name="curl").click()
    command = copied(page, f"{live_server}/api/v1/models/{name}/predict?proba=true")
    assert '"Authorization: Bearer $MLPLATFORM_API_KEY"' in command

    page.click("#create-test-key")
    expect(page.locator("#test-key-note")).to_contain_text(f"test-{name}")
    expect(page.locator("#snippet-code")).to_contain_text("mlp_")
    command = copied(page, "mlp_")
    assert "$MLPLATFORM_API_KEY" not in command
    answer = run(command)  # the key works, and the body is the pasted one
    assert [json.dumps(p) for p in answer["predictions"]] == expected(rows)
    assert answer["model"] == {"name": name, "version": 1} and len(answer["probabilities"]) == 2

    page.locator("#snippet-kind").get_by_role("radio", name="OIP v2").click()
    expect(page.locator("#snippet-code")).to_contain_text(f"/v2/models/{name}/versions/1/infer")
    answer = run(copied(page, f"{live_server}/v2/models/{name}/versions/1/infer"))
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert [json.dumps(p) for p in outputs["predict"]["data"]] == expected(rows)
    assert outputs["predict_proba"]["shape"] == [2, 2]

    page.click("#versions-tab")  # leaving the tab forgets the key: it was shown once
    page.click("#test-tab")
    expect(page.locator("#create-test-key")).to_be_visible()
    expect(page.locator("#snippet-code")).not_to_contain_text("mlp_")
