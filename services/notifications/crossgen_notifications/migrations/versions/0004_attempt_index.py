"""notifications: an index on attempt_id, by which each claim's outcome is recorded

Without it every recorded send read the whole delivery log, which is kept: at 200 emails/s the
recording grew from 0.15 to 0.6 of a core of PostgreSQL's in five minutes. Built concurrently,
so a large log keeps taking new messages meanwhile; a build that failed halfway leaves an
invalid index, dropped first when the migration runs again.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEX = "ix_notifications_attempt"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, "notifications", if_exists=True, postgresql_concurrently=True)
        op.create_index(INDEX, "notifications", ["attempt_id"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, "notifications", postgresql_concurrently=True)
