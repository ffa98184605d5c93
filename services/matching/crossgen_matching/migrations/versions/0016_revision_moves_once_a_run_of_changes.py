"""a transaction's run of changes moves a program's revision once, not once a row

Revision ID: 0016
Revises: 0015

Every pairing, pair rule or participant a transaction wrote moved the revision (0009), each move
a new version of the program's row; PostgreSQL finds the row's latest version by walking those
the transaction already made, so a transaction that writes n rows of one program walks n²/2
versions. A published run proposes thousands of pairings at once: 20,000 took 9 s of the
database's time instead of 0.7.

A revision this transaction's trigger made can stand for the next change as well, as long as
nothing has moved it since: a live matching is only ever kept at a revision its keeper took
itself (live_cache.keep), never at one a trigger made, so none is kept at this one. The
transaction notes its last move (program and revision) in a setting of its own; a change of the
program it finds still at that revision leaves it. A keep, any other change of the program or a
savepoint's rollback leaves a revision that differs, and the next change moves it again.
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_MOVE = """
    CREATE FUNCTION move_program_revision(program uuid) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        moved bigint;
    BEGIN
        IF current_setting('crossgen.revision_moved', true)
            = program || ':' || (SELECT revision FROM programs WHERE id = program) THEN
            RETURN;
        END IF;
        UPDATE programs SET revision = nextval('program_revisions') WHERE id = program
        RETURNING revision INTO moved;
        PERFORM set_config('crossgen.revision_moved', program || ':' || moved, true);
    END
    $$
"""


def _row_changed(move: str) -> str:
    """0009's trigger function for participants, pairings and pair rules, moving with ``move``."""
    return f"""
        CREATE OR REPLACE FUNCTION program_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                {move.format(program="OLD.program_id")};
            END IF;
            IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.program_id <> OLD.program_id) THEN
                {move.format(program="NEW.program_id")};
            END IF;
            RETURN NULL;
        END
        $$
    """


def upgrade() -> None:
    op.execute(_MOVE)
    op.execute(_row_changed("PERFORM move_program_revision({program})"))


def downgrade() -> None:
    op.execute(
        _row_changed(
            "UPDATE programs SET revision = nextval('program_revisions') WHERE id = {program}"
        )
    )
    op.execute("DROP FUNCTION move_program_revision(uuid)")
