"""Answer the Kubernetes probes before host validation.

Probes reach the pod by IP, a Host that is (rightly) not in ALLOWED_HOSTS; without this, Django
would answer 400 and the pod would never become ready.
"""
from typing import Callable

from django.http import HttpRequest, HttpResponse

from .views import healthz

HEALTH_PATH = "/healthz"


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == HEALTH_PATH:
            return healthz(request)
        return self.get_response(request)
