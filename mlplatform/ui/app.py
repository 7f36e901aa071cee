"""Register the dashboard's pages."""

from __future__ import annotations

import reflex as rx

from mlplatform.ui.pages.account import KeysState, account_page
from mlplatform.ui.pages.admin_users import UsersState, admin_users_page
from mlplatform.ui.pages.home import home_page
from mlplatform.ui.pages.login import LoginState, login_page
from mlplatform.ui.pages.models_detail import model_page
from mlplatform.ui.pages.models_detail_state import ModelDetailState
from mlplatform.ui.pages.models_list import ModelsState, models_page
from mlplatform.ui.pages.models_upload import ModelUploadState, upload_page
from mlplatform.ui.pages.register import register_page
from mlplatform.ui.state import SessionState


def add_pages(app: rx.App) -> None:
    app.add_page(login_page, route="/login", title="Sign in · mlplatform", on_load=LoginState.read_query)
    app.add_page(register_page, route="/register", title="Create account · mlplatform")
    app.add_page(home_page, route="/", title="mlplatform", on_load=SessionState.require_login)
    app.add_page(account_page, route="/account", title="API keys · mlplatform",
                 on_load=[SessionState.require_login, KeysState.load])
    app.add_page(models_page, route="/models", title="Models · mlplatform",
                 on_load=[SessionState.require_login, ModelsState.load])
    app.add_page(upload_page, route="/models/upload", title="Upload a model · mlplatform",
                 on_load=[SessionState.require_login, ModelUploadState.read_query])
    # the arg is named model_name (not name) so it cannot shadow a state var; states read the URL path
    app.add_page(model_page, route="/models/[model_name]", title="Model · mlplatform",
                 on_load=[SessionState.require_login, ModelDetailState.load])
    app.add_page(admin_users_page, route="/admin/users", title="Users · mlplatform",
                 on_load=[SessionState.require_login, UsersState.load])
