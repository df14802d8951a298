"""Jinja2 templates and the platform catalogue; data, not code."""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent
