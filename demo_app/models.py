"""The one table of the demo: rows for the CSV export of notebook 07.

A few text and number columns, like an orders or customers table, so that a
row costs about as much to load and format as a real one. ``seed_rows``
fills it; ``export_views`` reads it back as CSV.
"""

from django.db import models


class ExportRow(models.Model):
    """One line of the exported CSV."""

    name = models.CharField(max_length=40)
    email = models.CharField(max_length=80)
    city = models.CharField(max_length=40)
    quantity = models.IntegerField()
    amount_cents = models.BigIntegerField()

    CSV_HEADER = ("id", "name", "email", "city", "quantity", "amount_cents")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"ExportRow {self.pk}: {self.name}"

    def csv_fields(self) -> tuple:
        """The values of one CSV line, in ``CSV_HEADER`` order."""
        return (self.pk, self.name, self.email, self.city, self.quantity, self.amount_cents)
