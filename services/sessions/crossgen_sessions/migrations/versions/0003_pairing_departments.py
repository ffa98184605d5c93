"""pairings: each side's department at acceptance, for outcome reports by department

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pairings", sa.Column("learner_department", sa.String(200)))
    op.add_column("pairings", sa.Column("mentor_department", sa.String(200)))


def downgrade() -> None:
    op.drop_column("pairings", "mentor_department")
    op.drop_column("pairings", "learner_department")
