import datetime
from unittest import mock

from django.db import OperationalError
from django.test import TestCase, override_settings

from records.models import Encounter, Patient
from records.tasks import count_patients


class HealthzTests(TestCase):
    def test_healthz_ok(self) -> None:
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok", "database": "ok"})

    def test_healthz_answers_probes_by_pod_ip(self) -> None:
        # Kubernetes probes without a Host header use the pod IP, which ALLOWED_HOSTS does not list.
        response = self.client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
        self.assertEqual(response.status_code, 200)

    @override_settings(SECURE_SSL_REDIRECT=True)
    def test_healthz_is_not_redirected_to_https(self) -> None:
        # The kubelet probes over plain HTTP and does not follow a redirect to https.
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)

    def test_healthz_reports_a_database_failure(self) -> None:
        with mock.patch("records.views.connection.cursor", side_effect=OperationalError("connection refused")):
            response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json(), {"status": "unavailable", "database": "OperationalError"})


class PatientListTests(TestCase):
    def setUp(self) -> None:
        ada = Patient.objects.create(medical_record_number="MRN-1", given_name="Ada", family_name="Lovelace", date_of_birth=datetime.date(1815, 12, 10))
        Patient.objects.create(medical_record_number="MRN-2", given_name="Alan", family_name="Turing", date_of_birth=datetime.date(1912, 6, 23))
        Encounter.objects.create(patient=ada, started_at=datetime.datetime(2024, 1, 2, 9, 0, tzinfo=datetime.timezone.utc))

    def test_lists_patients_in_name_order(self) -> None:
        response = self.client.get("/records/patients/", secure=True)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            [p["medical_record_number"] for p in response.json()["patients"]],
            ["MRN-1", "MRN-2"],
        )

    @override_settings(SECURE_SSL_REDIRECT=True)
    def test_plain_http_is_redirected_to_https(self) -> None:
        response = self.client.get("/records/patients/")
        self.assertEqual(response.status_code, 301)
        self.assertTrue(response["Location"].startswith("https://"), response["Location"])

    def test_an_unknown_host_is_refused(self) -> None:
        response = self.client.get("/records/patients/", secure=True, HTTP_HOST="attacker.example")
        self.assertEqual(response.status_code, 400)

    def test_encounters_belong_to_their_patient(self) -> None:
        ada = Patient.objects.get(medical_record_number="MRN-1")
        self.assertEqual(ada.encounters.count(), 1)
        self.assertEqual(ada.encounters.get().kind, Encounter.Kind.OUTPATIENT)


class TaskTests(TestCase):
    def test_count_patients_counts_the_database(self) -> None:
        Patient.objects.create(medical_record_number="MRN-9", given_name="Grace", family_name="Hopper", date_of_birth=datetime.date(1906, 12, 9))
        # apply() runs the task in this process, as a worker would, without a broker.
        self.assertEqual(count_patients.apply().get(), 1)
