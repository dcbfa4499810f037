"""Views: a health probe and a read-only patient list."""
from django.db import connection
from django.http import HttpRequest, JsonResponse

from .models import Patient


def healthz(request: HttpRequest) -> JsonResponse:
    """Readiness probe: the process serves requests and the database answers.

    The body names the database check, so a 503 says what is down; only the exception's class is
    shown (its message may carry a host name or a user).
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any database failure means "not ready"
        return JsonResponse({"status": "unavailable", "database": exc.__class__.__name__}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def patient_list(request: HttpRequest) -> JsonResponse:
    patients = Patient.objects.values("medical_record_number", "family_name", "given_name")[:100]
    return JsonResponse({"patients": list(patients)})
