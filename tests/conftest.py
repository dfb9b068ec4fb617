"""Shared fixtures.  Fixture modules are registered here as plugins."""

pytest_plugins = []
