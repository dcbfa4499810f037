"""URL routes of the emr project."""
from django.contrib import admin
from django.urls import include, path

from records.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("records/", include("records.urls")),
]
