"""Program outcomes for the program owner: reports (JSON, CSV), an overview, the dashboard."""
