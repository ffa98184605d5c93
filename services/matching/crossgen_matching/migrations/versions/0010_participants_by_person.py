"""participants found by person: every directory change asks which enrolments a person has

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_participants_person_id", "participants", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_participants_person_id", table_name="participants")
