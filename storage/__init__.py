"""SQLite access: migrations, the unit of work, repositories and report queries."""
