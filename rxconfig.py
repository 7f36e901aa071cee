import reflex as rx

from mlplatform.config import get_settings

settings = get_settings()

config = rx.Config(
    app_name="mlplatform",
    db_url=None,  # the platform owns its engine and migrations (mlplatform.db, alembic/)
    redis_url=settings.redis_url,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    deploy_url=settings.public_url,
    plugins=[rx.plugins.SitemapPlugin(), rx.plugins.RadixThemesPlugin()],
)
