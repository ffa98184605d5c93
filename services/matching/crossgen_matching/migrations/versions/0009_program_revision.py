"""a program's revision: moves whenever what a matching decision reads of it changes

Revision ID: 0009
Revises: 0008

Matching keeps each program's live matching in memory between joins (live_cache.py) and trusts
it while the program's revision is the one it was built at. The triggers move the revision in
the transaction of every change a decision reads: the program's participants, pairings, pair
rules and weights, and the directory entries of its participants (department, hire date, job
level) and of anyone's manager link (the management-chain rule reads the whole org chart).

A participant's insert does not move it: a newcomer enters the matching by their own join, which
the live matching takes in, and enrolment is a transaction of its own before that join.

Revisions come from a sequence, never ``revision + 1``: a value handed out in a transaction
(or a savepoint) that rolled back is never handed out again, so a revision names one state.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Programs are locked in id order, so that two changes that move many never deadlock.
_MOVE_ALL = """
    UPDATE programs SET revision = nextval('program_revisions')
    WHERE id IN (SELECT id FROM programs ORDER BY id FOR NO KEY UPDATE)
"""
_MOVE_OF_PERSON = """
    UPDATE programs SET revision = nextval('program_revisions')
    WHERE id IN (
        SELECT id FROM programs WHERE id IN (
            SELECT program_id FROM participants
            WHERE person_id = {row}.employee_number AND status = 'active'
        ) ORDER BY id FOR NO KEY UPDATE
    )
"""

_FUNCTIONS = {
    # participants, pairings, pair_rules: the program the row belongs to.
    "program_row_changed": """
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                UPDATE programs SET revision = nextval('program_revisions')
                WHERE id = OLD.program_id;
            END IF;
            IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.program_id <> OLD.program_id) THEN
                UPDATE programs SET revision = nextval('program_revisions')
                WHERE id = NEW.program_id;
            END IF;
            RETURN NULL;
        END
    """,
    # Any column but the revision itself (weights above all).
    "program_changed": """
        BEGIN
            IF (to_jsonb(NEW) - 'revision') IS DISTINCT FROM (to_jsonb(OLD) - 'revision') THEN
                NEW.revision := nextval('program_revisions');
            END IF;
            RETURN NEW;
        END
    """,
    "employee_changed": f"""
        BEGIN
            IF TG_OP = 'INSERT' THEN
                -- Someone already named them as manager: the org chart gains a link above.
                IF EXISTS (
                    SELECT 1 FROM employees WHERE manager_employee_number = NEW.employee_number
                ) THEN
                    {_MOVE_ALL};
                END IF;
            ELSIF TG_OP = 'DELETE'
                OR NEW.manager_employee_number IS DISTINCT FROM OLD.manager_employee_number
                OR NEW.removed_at IS DISTINCT FROM OLD.removed_at
                OR NEW.active IS DISTINCT FROM OLD.active THEN
                {_MOVE_ALL};
            ELSIF NEW.department IS DISTINCT FROM OLD.department
                OR NEW.hire_date IS DISTINCT FROM OLD.hire_date
                OR NEW.job_level IS DISTINCT FROM OLD.job_level THEN
                {_MOVE_OF_PERSON.format(row="NEW")};
            END IF;
            RETURN NULL;
        END
    """,
}
# (table, when, function): one trigger each, named after its table.
_TRIGGERS = (
    ("participants", "AFTER UPDATE OR DELETE", "program_row_changed"),
    ("pairings", "AFTER INSERT OR UPDATE OR DELETE", "program_row_changed"),
    ("pair_rules", "AFTER INSERT OR UPDATE OR DELETE", "program_row_changed"),
    ("programs", "BEFORE UPDATE", "program_changed"),
    # The columns roster.py reads (Position and the manager links), and presence.
    (
        "employees",
        "AFTER INSERT OR DELETE OR UPDATE OF department, hire_date, job_level,"
        " manager_employee_number, active, removed_at",
        "employee_changed",
    ),
)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE program_revisions")
    op.add_column(
        "programs", sa.Column("revision", sa.BigInteger, nullable=False, server_default="0")
    )
    for name, body in _FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$")
    for table, when, function in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {table}_move_revision {when} ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION {function}()"
        )


def downgrade() -> None:
    for table, _, _ in _TRIGGERS:
        op.execute(f"DROP TRIGGER {table}_move_revision ON {table}")
    for name in _FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_column("programs", "revision")
    op.execute("DROP SEQUENCE program_revisions")
