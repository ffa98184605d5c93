"""pairings, sessions, feedback, and the outbox / inbox

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
        "pairings",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("program_id", sa.Uuid, nullable=False, index=True),
        sa.Column("learner_id", sa.Uuid, nullable=False),
        sa.Column("mentor_id", sa.Uuid, nullable=False),
        sa.Column("learner_person_id", sa.String(200), nullable=False, index=True),
        sa.Column("mentor_person_id", sa.String(200), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("ended_at", TS),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("pairing_id", sa.Uuid, sa.ForeignKey("pairings.id"), nullable=False, index=True),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("duration_minutes", sa.Integer, nullable=False),
        sa.Column("agenda", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("held_minutes", sa.Integer),
        sa.Column("completed_at", TS),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("session_id", sa.Uuid, sa.ForeignKey("sessions.id"), primary_key=True),
        sa.Column("participant_id", sa.Uuid, primary_key=True),
        sa.Column("ratings", sa.JSON, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("sessions")
    op.drop_table("pairings")
    drop_messaging_tables()
