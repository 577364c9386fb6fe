"""Benchmarks: scripts that print figures (not tests; run them with `./dev python bench/…`)."""
