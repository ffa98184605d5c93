"""program eligibility rules per role, and how a program enrols people

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL rules and "self" enrolment: existing programs admit anyone who enrols, as before.
    op.add_column("programs", sa.Column("eligibility", sa.JSON, nullable=True))
    op.add_column(
        "programs", sa.Column("enrolment", sa.String(16), nullable=False, server_default="self")
    )


def downgrade() -> None:
    op.drop_column("programs", "enrolment")
    op.drop_column("programs", "eligibility")
