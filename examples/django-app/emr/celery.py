"""Celery application: workers run `celery -A emr worker`."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emr.settings")

app = Celery("emr")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
