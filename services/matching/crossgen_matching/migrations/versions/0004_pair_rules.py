"""pinned and forbidden pairs

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pair_rules",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("program_id", sa.Uuid, sa.ForeignKey("programs.id"), nullable=False, index=True),
        sa.Column("learner_id", sa.Uuid, sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("mentor_id", sa.Uuid, sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("program_id", "learner_id", "mentor_id", "kind"),
    )


def downgrade() -> None:
    op.drop_table("pair_rules")
