"""employee directory; a person who left a program may enrol in it again

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
    op.create_table(
        "employees",
        sa.Column("employee_number", sa.String(64), primary_key=True),
        sa.Column("external_id", sa.String(255), index=True),
        sa.Column("user_name", sa.String(320)),
        sa.Column("display_name", sa.String(200)),
        sa.Column("email", sa.String(320), index=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("department", sa.String(200)),
        sa.Column("division", sa.String(200)),
        sa.Column("organization", sa.String(200)),
        sa.Column("cost_center", sa.String(200)),
        sa.Column("manager_employee_number", sa.String(64), index=True),
        sa.Column("manager_external_id", sa.String(255)),
        sa.Column("title", sa.String(200)),
        sa.Column("job_level", sa.String(100)),
        sa.Column("hire_date", sa.Date),
        sa.Column("location", sa.String(200)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("languages", sa.JSON, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("source_timestamp", TS, nullable=False),
        sa.Column("last_vendor_event_id", sa.String(255)),
        sa.Column("removed_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index(
        "uq_employees_user_name",
        "employees",
        [sa.text("lower(user_name)")],
        unique=True,
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.create_index(
        "ix_employees_scim_user_name",
        "employees",
        [sa.text("lower(coalesce(user_name, email, employee_number))")],
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.drop_constraint("participants_program_id_person_id_key", "participants", type_="unique")
    op.create_index(
        "uq_participants_active_person",
        "participants",
        ["program_id", "person_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_index("uq_participants_active_person", "participants")
    op.create_unique_constraint(
        "participants_program_id_person_id_key", "participants", ["program_id", "person_id"]
    )
    op.drop_table("employees")
