from django.test import TestCase


class HealthzTests(TestCase):
    def test_healthz_ok(self) -> None:
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok"})

    def test_healthz_answers_probes_by_pod_ip(self) -> None:
        # Kubernetes probes use the pod IP as Host, which ALLOWED_HOSTS does not list.
        response = self.client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
        self.assertEqual(response.status_code, 200)
