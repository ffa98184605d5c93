"""the directory's skills and learning interests of each employee

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Employees already in the directory have none until their HR system sends them.
    for column in ("skills", "interests"):
        op.add_column("employees", sa.Column(column, sa.JSON, nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("employees", "interests")
    op.drop_column("employees", "skills")
