"""What all Crossgen services agree on: events, topics, and the messaging plumbing."""
