"""Falcon responders, one class per URI template."""
