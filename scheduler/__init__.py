"""APScheduler jobs: deadline sweep, callback sweep, reports."""
