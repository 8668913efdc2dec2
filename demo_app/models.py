"""The demo's tables: rows for the CSV export of notebook 07, events for notebook 12.

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


class TopicEvent(models.Model):
    """One event published to a topic (notebook 12): the table is the log every stream
    can replay from, and its id is the ``id:`` of the server-sent event."""

    topic = models.CharField(max_length=20)
    data = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["topic", "id"], name="topic_event_replay")]

    def __str__(self) -> str:
        return f"TopicEvent {self.pk} on {self.topic}"
