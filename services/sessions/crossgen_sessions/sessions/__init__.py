"""A session's life inside a pairing: scheduled, moved, cancelled, held or missed, rated."""
