"""programs, participants, pairings, and the outbox / inbox

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from crossgen_shared.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "programs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "participants",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("program_id", sa.Uuid, sa.ForeignKey("programs.id"), nullable=False, index=True),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("skills", sa.JSON, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
        sa.UniqueConstraint("program_id", "person_id"),
    )
    op.create_table(
        "pairings",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("program_id", sa.Uuid, sa.ForeignKey("programs.id"), nullable=False, index=True),
        sa.Column("learner_id", sa.Uuid, sa.ForeignKey("participants.id"), nullable=False, index=True),
        sa.Column("mentor_id", sa.Uuid, sa.ForeignKey("participants.id"), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("explanation", sa.JSON, nullable=False),
        sa.Column("learner_accepted", sa.Boolean, nullable=False),
        sa.Column("mentor_accepted", sa.Boolean, nullable=False),
        sa.Column("proposed_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pairings")
    op.drop_table("participants")
    op.drop_table("programs")
    drop_messaging_tables()
