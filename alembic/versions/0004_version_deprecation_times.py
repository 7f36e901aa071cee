"""version deprecation times: when a version was deprecated and when it stops serving

Both nullable, no server default: existing deprecated versions get no Deprecation date and no
sunset (they keep serving, with `Deprecation: true` until deprecated again).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 19:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mlplatform.models

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deprecated_at', mlplatform.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sunset_at', mlplatform.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_column('sunset_at')
        batch_op.drop_column('deprecated_at')
