"""The pure domain: cases, states, tracks, deadlines, calendar and metrics. No I/O here."""
