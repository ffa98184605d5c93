"""reports found by their manager's source id: every new hire with a source id adopts them

Revision ID: 0011
Revises: 0010

A record may name a manager by the source's id before the directory knows them; when that manager
arrives, their reports are linked (directory/employees.py). Without an index that is a scan of the
whole directory for every new hire, quadratic over a first load.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_employees_unlinked_manager_external_id",
        "employees",
        ["manager_external_id"],
        postgresql_where=sa.text("manager_employee_number IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_employees_unlinked_manager_external_id", table_name="employees")
