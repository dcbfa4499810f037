"""Views: a health probe and a read-only patient list."""
from django.db import connection
from django.http import HttpRequest, JsonResponse

from .models import Patient


def healthz(request: HttpRequest) -> JsonResponse:
    """Readiness/liveness probe: the process serves requests and the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any database failure means "not ready"
        return JsonResponse({"status": "unavailable", "error": exc.__class__.__name__}, status=503)
    return JsonResponse({"status": "ok"})


def patient_list(request: HttpRequest) -> JsonResponse:
    patients = Patient.objects.values("medical_record_number", "family_name", "given_name")[:100]
    return JsonResponse({"patients": list(patients)})
