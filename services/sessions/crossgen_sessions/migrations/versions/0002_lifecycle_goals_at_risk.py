"""session lifecycle (video link, no-shows, cancellations), pairing end dates, goals, at-risk marks

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("pairings", sa.Column("ends_on", sa.Date))
    op.add_column("sessions", sa.Column("video_link", sa.Text))
    op.add_column("sessions", sa.Column("absent", sa.String(16)))
    op.add_column("sessions", sa.Column("cancelled_by", sa.Uuid))
    op.add_column("sessions", sa.Column("cancellation_reason", sa.Text))
    op.add_column("sessions", sa.Column("cancelled_at", TS))
    # Upcoming sessions of a person, and a pairing's history, are read by start time.
    op.create_index("ix_sessions_pairing_starts", "sessions", ["pairing_id", "starts_at"])
    op.create_table(
        "goals",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("pairing_id", sa.Uuid, sa.ForeignKey("pairings.id"), nullable=False, index=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("progress", sa.Integer, nullable=False),
        sa.Column("created_by", sa.Uuid, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name="ck_goals_progress"),
    )
    op.create_table(
        "at_risk_marks",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("pairing_id", sa.Uuid, sa.ForeignKey("pairings.id"), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("detected_at", TS, nullable=False),
        sa.UniqueConstraint("pairing_id", "reason", "since", name="uq_at_risk_marks_episode"),
    )


def downgrade() -> None:
    op.drop_table("at_risk_marks")
    op.drop_table("goals")
    op.drop_index("ix_sessions_pairing_starts", "sessions")
    for column in ("cancelled_at", "cancellation_reason", "cancelled_by", "absent", "video_link"):
        op.drop_column("sessions", column)
    op.drop_column("pairings", "ends_on")
