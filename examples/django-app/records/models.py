"""Patients and their encounters."""
from django.db import models


class Patient(models.Model):
    medical_record_number = models.CharField(max_length=32, unique=True)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["family_name", "given_name"]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.medical_record_number})"


class Encounter(models.Model):
    class Kind(models.TextChoices):
        OUTPATIENT = "outpatient", "Outpatient"
        INPATIENT = "inpatient", "Inpatient"
        EMERGENCY = "emergency", "Emergency"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="encounters")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OUTPATIENT)
    started_at = models.DateTimeField()
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["patient", "started_at"], name="encounter_patient_started_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} encounter for {self.patient} at {self.started_at:%Y-%m-%d}"
