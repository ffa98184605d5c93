"""outbox and inbox: BRIN indexes on their times, to find the rows past their retention

Revision ID: 0004
Revises: 0003
"""

from crossgen_shared.migrations import create_retention_indexes, drop_retention_indexes

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_retention_indexes()


def downgrade() -> None:
    drop_retention_indexes()
