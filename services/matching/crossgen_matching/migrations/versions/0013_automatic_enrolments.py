"""automatic enrolments: a program's run through the directory, a batch per transaction

Revision ID: 0013
Revises: 0012

A switch to automatic enrolment enrolled the whole directory in the admin's request, one
transaction of a minute at 40,000 employees; a background run now does it in batches, and keeps
its place here (automatic_enrolment.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automatic_enrolments",
        sa.Column("program_id", sa.Uuid, sa.ForeignKey("programs.id"), primary_key=True),
        sa.Column("after", sa.String(64), nullable=True),
        sa.Column("to_check", sa.Integer, nullable=False),
        sa.Column("checked", sa.Integer, nullable=False),
        sa.Column("enrolled", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("automatic_enrolments")
