"""fixledger: checklist-driven change tracking for memory and performance fixes."""

from .celery_app import app as celery_app

__all__ = ["celery_app"]
