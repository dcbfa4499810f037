"""emr: example electronic medical records project."""
from .celery import app as celery_app

__all__ = ("celery_app",)
