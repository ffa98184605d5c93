"""channels, preferences, scheduled and digested messages, pairings and session invites

Revision ID: 0002
Revises: 0001
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "contacts", sa.Column("locale", sa.String(35), nullable=False, server_default="en")
    )
    op.add_column("contacts", sa.Column("left_at", TS))
    op.create_table(
        "pairings",
        sa.Column("pairing_id", sa.Uuid, primary_key=True),
        sa.Column("learner_id", sa.Uuid, nullable=False, index=True),
        sa.Column("mentor_id", sa.Uuid, nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "session_invites",
        sa.Column("session_id", sa.Uuid, primary_key=True),
        sa.Column("learner_id", sa.Uuid, nullable=False),
        sa.Column("mentor_id", sa.Uuid, nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("duration_minutes", sa.Integer, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("cancelled", sa.Boolean, nullable=False),
    )
    op.create_table(
        "preferences",
        sa.Column("person_id", sa.String(200), primary_key=True),
        sa.Column("locale", sa.String(35)),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("quiet_start", sa.Time),
        sa.Column("quiet_end", sa.Time),
        sa.Column("digest", sa.Boolean, nullable=False),
        sa.Column("email_enabled", sa.Boolean, nullable=False),
        sa.Column("chat_kind", sa.String(16)),
        sa.Column("chat_url", sa.Text),
        sa.Column("webhook_url", sa.Text),
        sa.Column("webhook_secret", sa.String(100)),
    )
    signing_keys = op.create_table(
        "signing_keys",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("secret", sa.LargeBinary, nullable=False),
    )
    # Made here, once, so every replica signs and checks unsubscribe links with the same key.
    op.bulk_insert(signing_keys, [{"name": "unsubscribe", "secret": secrets.token_bytes(32)}])

    op.add_column("notifications", sa.Column("person_id", sa.String(200)))
    op.execute(
        "UPDATE notifications SET person_id = contacts.person_id FROM contacts"
        " WHERE contacts.participant_id = notifications.recipient_id"
    )
    op.execute("UPDATE notifications SET person_id = '' WHERE person_id IS NULL")
    op.alter_column("notifications", "person_id", nullable=False)
    op.alter_column("notifications", "to_address", type_=sa.Text)  # chat URLs are long
    for column in (
        sa.Column("html", sa.Text),
        sa.Column("calendar", sa.Text),
        sa.Column("session_id", sa.Uuid),
        sa.Column("digest_id", sa.Uuid),
        sa.Column("attempt_id", sa.Uuid),
        sa.Column("claimed_at", TS),
    ):
        op.add_column("notifications", column)
    # One event may cause several messages to a person (scheduled, reminder, feedback request):
    # each is still sent once per channel.
    op.drop_constraint("uq_notifications_once", "notifications")
    op.create_unique_constraint(
        "uq_notifications_once",
        "notifications",
        ["source_event_id", "template", "recipient_id", "channel"],
    )
    op.create_index(
        "ix_notifications_sending",
        "notifications",
        ["claimed_at"],
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.create_index("ix_notifications_person", "notifications", ["person_id", "created_at"])
    op.create_index("ix_notifications_session", "notifications", ["session_id"])
    op.create_index("ix_notifications_digest", "notifications", ["digest_id"])


def downgrade() -> None:
    for index in ("digest", "session", "person", "sending"):
        op.drop_index(f"ix_notifications_{index}", "notifications")
    op.drop_constraint("uq_notifications_once", "notifications")
    op.create_unique_constraint(
        "uq_notifications_once", "notifications", ["source_event_id", "recipient_id", "channel"]
    )
    for column in (
        "claimed_at",
        "attempt_id",
        "digest_id",
        "session_id",
        "calendar",
        "html",
        "person_id",
    ):
        op.drop_column("notifications", column)
    op.alter_column("notifications", "to_address", type_=sa.String(320))
    for table in ("signing_keys", "preferences", "session_invites", "pairings"):
        op.drop_table(table)
    op.drop_column("contacts", "left_at")
    op.drop_column("contacts", "locale")
