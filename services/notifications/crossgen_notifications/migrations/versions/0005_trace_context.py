"""notifications: each message keeps the trace context of the event that caused it

Sending it and the notification-sent / -failed event then continue that trace, as every other
step does. A constant default: PostgreSQL adds the column without rewriting the table.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "notifications", sa.Column("trace_context", sa.JSON(), nullable=False, server_default="{}")
    )


def downgrade() -> None:
    op.drop_column("notifications", "trace_context")
