"""prediction limits: per-key and per-model rate limits, per-model prediction cache TTL

All three columns are nullable with no server default: NULL means "the platform default"
(predict_rate_limit_per_minute, prediction_cache_ttl_seconds), so existing rows keep today's
behaviour and adding the columns rewrites no table on PostgreSQL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 21:14:12.855580
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_limit_per_minute', sa.Integer(), nullable=True))

    with op.batch_alter_table('ml_models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_limit_per_minute', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cache_ttl_seconds', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ml_models', schema=None) as batch_op:
        batch_op.drop_column('cache_ttl_seconds')
        batch_op.drop_column('rate_limit_per_minute')

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('rate_limit_per_minute')
