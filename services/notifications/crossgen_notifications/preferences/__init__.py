"""Each person's choices about their messages, and the unsubscribe link in every email."""
