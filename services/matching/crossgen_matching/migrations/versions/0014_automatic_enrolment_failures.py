"""automatic enrolments: a run's failures in a row, its last error and when it is tried again

Revision ID: 0014
Revises: 0013

A batch that kept failing was tried again every second, its error only in the logs, and the runs
started after it waited behind it; now the run says so and waits longer each time.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TABLE = "automatic_enrolments"


def upgrade() -> None:
    op.add_column(_TABLE, sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
    op.add_column(_TABLE, sa.Column("last_error", sa.Text, nullable=True))
    op.add_column(_TABLE, sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("retry_at", "last_error", "failures"):
        op.drop_column(_TABLE, column)
