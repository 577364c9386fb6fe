"""Wenzheng core: domain, services, configuration, the app factory and the CLI."""
