"""per-program weights of the score

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: the optimiser's defaults, so existing programs score as before.
    op.add_column("programs", sa.Column("weights", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("programs", "weights")
