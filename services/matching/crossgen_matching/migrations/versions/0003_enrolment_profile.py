"""enrolment profile: skill levels, languages, timezone, working hours, goals

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PROFILE = ("languages", "timezone", "work_start", "work_end", "goals")


def upgrade() -> None:
    # Skills become {name: level}; those enrolled as plain names get the middle level.
    op.execute(
        "UPDATE participants SET skills = (SELECT coalesce(json_object_agg(s, 3), '{}'::json)"
        " FROM json_array_elements_text(skills) AS s)"
    )
    op.add_column(
        "participants",
        sa.Column("languages", sa.JSON, nullable=False, server_default='["en"]'),
    )
    op.add_column(
        "participants", sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC")
    )
    op.add_column(
        "participants", sa.Column("work_start", sa.Integer, nullable=False, server_default="9")
    )
    op.add_column(
        "participants", sa.Column("work_end", sa.Integer, nullable=False, server_default="17")
    )
    op.add_column("participants", sa.Column("goals", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    for column in PROFILE:
        op.drop_column("participants", column)
    op.execute(
        "UPDATE participants SET skills = (SELECT coalesce(json_agg(k ORDER BY k), '[]'::json)"
        " FROM json_object_keys(skills) AS k)"
    )
