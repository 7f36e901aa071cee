"""prediction log: prediction_logs, one row per prediction call

Append-only and high-volume: an autoincrementing integer key (BIGINT on PostgreSQL, INTEGER on
SQLite, the only type SQLite autoincrements) and no foreign keys (bulk inserts check nothing;
rows outlive what they name). Indexed by time, and by model then time, for the analytics.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 22:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import mlplatform.models

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('prediction_logs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', mlplatform.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('model_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('model_id', sa.Uuid(), nullable=True),
    sa.Column('version_id', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('api_key_id', sa.Uuid(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('error_kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('cached', sa.Boolean(), nullable=False),
    sa.Column('model_ms', sa.Float(), nullable=False),
    sa.Column('total_ms', sa.Float(), nullable=False),
    sa.Column('n_rows', sa.Integer(), nullable=True),
    sa.Column('input_payload', sa.Text(), nullable=True),
    sa.Column('output_payload', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('prediction_logs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prediction_logs_at'), ['at'], unique=False)
        batch_op.create_index('ix_prediction_logs_model_id_at', ['model_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('prediction_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_prediction_logs_model_id_at')
        batch_op.drop_index(batch_op.f('ix_prediction_logs_at'))

    op.drop_table('prediction_logs')
