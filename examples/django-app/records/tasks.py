"""Background jobs run by the Celery worker."""
from celery import shared_task

from .models import Patient


@shared_task
def count_patients() -> int:
    return Patient.objects.count()
