"""the skill names a program knows

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: existing programs take any skill name, as before.
    op.add_column("programs", sa.Column("skill_catalogue", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("programs", "skill_catalogue")
