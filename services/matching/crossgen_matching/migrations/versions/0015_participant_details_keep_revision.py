"""a participant's name, email or goals no longer move the program's revision

Revision ID: 0015
Revises: 0014

Any update of a participant moved it (0009), so every HRIS record that renamed someone in a
program, or gave them a new email, threw away the program's live matching, and the next join read
the whole program again: at a launch, with records flowing, most joins did. No decision reads
those three columns (roster.Member): they are for the emails and for the pair. An update that
changes any other column moves it as before, also one a later migration adds.
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_UNREAD = "ARRAY['display_name', 'email', 'goals']"


def upgrade() -> None:
    op.execute("DROP TRIGGER participants_move_revision ON participants")
    op.execute(
        "CREATE TRIGGER participants_move_revision AFTER DELETE ON participants"
        " FOR EACH ROW EXECUTE FUNCTION program_row_changed()"
    )
    op.execute(
        "CREATE TRIGGER participants_update_moves_revision AFTER UPDATE ON participants"
        f" FOR EACH ROW WHEN ((to_jsonb(NEW) - {_UNREAD}) IS DISTINCT FROM"
        f" (to_jsonb(OLD) - {_UNREAD})) EXECUTE FUNCTION program_row_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER participants_update_moves_revision ON participants")
    op.execute("DROP TRIGGER participants_move_revision ON participants")
    op.execute(
        "CREATE TRIGGER participants_move_revision AFTER UPDATE OR DELETE ON participants"
        " FOR EACH ROW EXECUTE FUNCTION program_row_changed()"
    )
