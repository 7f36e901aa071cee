"""Train a few models on data sets scikit-learn ships and upload them to a running platform.

    make demo                      # against http://127.0.0.1:8000 (start it with `make run`)
    .venv/bin/python scripts/demo.py --url http://host:8000 --email you@example.com --password ...

With no credentials it registers (or signs in as) demo@example.com and prints the password
it used. MLPLATFORM_DEMO_EMAIL / MLPLATFORM_DEMO_PASSWORD / MLPLATFORM_DEMO_URL work too.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import joblib
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "sklearn models are fun 42"


@dataclass(frozen=True)
class DemoModel:
    name: str
    description: str
    train: Callable[[], object]


def _iris():
    data = load_iris(as_frame=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(data.data, data.target_names[data.target])


def _wine():
    X, y = load_wine(return_X_y=True)
    return RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return Ridge(alpha=0.5).fit(X, y)


def _breast_cancer():
    data = load_breast_cancer(as_frame=True)
    svc = CalibratedClassifierCV(SVC(random_state=0), ensemble=False)  # probabilities for an SVC
    return make_pipeline(StandardScaler(), svc).fit(data.data, data.target)


def _diabetes_columns():
    """A DataFrame pipeline: `sex` is categorical (one-hot), the rest are scaled numbers."""
    frame = load_diabetes(as_frame=True, scaled=False)
    X = frame.data.assign(sex=frame.data["sex"].map({1.0: "sex_1", 2.0: "sex_2"}))
    numeric = [c for c in X.columns if c != "sex"]
    columns = ColumnTransformer([("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["sex"])])
    return make_pipeline(columns, GradientBoostingRegressor(random_state=0)).fit(X, frame.target)


MODELS = [
    DemoModel("iris", "Iris species from flower measurements (scaler + logistic regression)", _iris),
    DemoModel("wine", "Wine cultivar from chemical analysis (random forest)", _wine),
    DemoModel("diabetes", "Diabetes progression after one year (ridge regression)", _diabetes),
    DemoModel("breast-cancer", "Malignant (0) or benign (1) tumour (scaler + calibrated SVC)", _breast_cancer),
    DemoModel("diabetes-columns", "Diabetes progression from named columns (ColumnTransformer + gradient boosting)", _diabetes_columns),
]


def sign_in(client: httpx.Client, email: str, password: str) -> str:
    answer = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    if answer.status_code == 401 and email == DEMO_EMAIL:
        client.post("/api/v1/auth/register", json={"email": email, "password": password}).raise_for_status()
        answer = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    answer.raise_for_status()
    return answer.json()["access_token"]


def upload(client: httpx.Client, model: DemoModel) -> dict:
    buffer = io.BytesIO()
    joblib.dump(model.train(), buffer, compress=3)
    answer = client.post(
        f"/api/v1/models/{model.name}/versions",
        files={"file": (f"{model.name}.joblib", buffer.getvalue(), "application/octet-stream")},
        data={"description": model.description},
    )
    if answer.status_code != 201:
        raise SystemExit(f"{model.name}: upload refused ({answer.status_code}): {answer.text}")
    return answer.json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("MLPLATFORM_DEMO_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--email", default=os.environ.get("MLPLATFORM_DEMO_EMAIL", DEMO_EMAIL))
    parser.add_argument("--password", default=os.environ.get("MLPLATFORM_DEMO_PASSWORD", DEMO_PASSWORD))
    args = parser.parse_args(argv)
    with httpx.Client(base_url=args.url, timeout=120) as client:
        token = sign_in(client, args.email, args.password)
        client.headers["Authorization"] = f"Bearer {token}"
        for model in MODELS:
            version = upload(client, model)
            print(f"uploaded {model.name} v{version['version']}: {version['signature']['estimator']}")
    print(f"\nSign in at {args.url}/login/ as {args.email} (password: {args.password}) to see them.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
