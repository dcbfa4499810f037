from django.contrib import admin

from .models import Encounter, Patient


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ("medical_record_number", "family_name", "given_name", "date_of_birth")
    search_fields = ("medical_record_number", "family_name")


@admin.register(Encounter)
class EncounterAdmin(admin.ModelAdmin):
    list_display = ("patient", "kind", "started_at")
    list_filter = ("kind",)
