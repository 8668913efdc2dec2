"""``python manage.py seed_rows 100000``: fill the export table quickly.

The rows are made up but deterministic (row *i* is always the same), so an
export can be checked against what was seeded. They are inserted with
``bulk_create`` in batches inside one transaction: one INSERT per batch
instead of one per row, and one commit instead of thousands. On PostgreSQL the
database makes the same rows itself, in one ``INSERT ... SELECT`` over
``generate_series`` (``make_row`` written in SQL): there ``bulk_create`` would
spend most of its time quoting values in Python, ten times longer.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from demo_app.models import ExportRow

MAX_ROWS = 10_000_000
MAX_BATCH = 50_000
CITIES = ("Lisbon", "Nairobi", "Osaka", "Quito", "Tromsø", "Wellington", "Zagreb")


def make_row(i: int) -> ExportRow:
    """Row number ``i`` (1-based), the same every time."""
    return ExportRow(
        id=i,
        name=f"Customer {i}",
        email=f"customer{i}@example.com",
        city=CITIES[i % len(CITIES)],
        quantity=i % 97 + 1,
        amount_cents=(i * 7919) % 1_000_000,
    )


# ``make_row`` for rows 1..%(rows)s, in PostgreSQL's SQL (arrays count from 1).
POSTGRES_SEED = """
INSERT INTO {table} (id, name, email, city, quantity, amount_cents)
SELECT i, 'Customer ' || i, 'customer' || i || '@example.com',
       (%(cities)s::text[])[i %% %(ncities)s + 1], i %% 97 + 1, (i::bigint * 7919) %% 1000000
FROM generate_series(1, %(rows)s) AS i
"""


def seed(rows: int, batch_size: int = 5_000) -> float:
    """Replace the table's contents with ``rows`` rows; return the seconds it took."""
    start = time.perf_counter()
    with transaction.atomic():
        ExportRow.objects.all().delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(POSTGRES_SEED.format(table=ExportRow._meta.db_table),
                               {"rows": rows, "cities": list(CITIES), "ncities": len(CITIES)})
            return time.perf_counter() - start
        for first in range(1, rows + 1, batch_size):
            last = min(first + batch_size, rows + 1)
            ExportRow.objects.bulk_create(make_row(i) for i in range(first, last))
    return time.perf_counter() - start


def _whole_number(name: str, raw: str, minimum: int, maximum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise CommandError(f"{name} must be a whole number, got {raw!r}.") from None
    if not minimum <= value <= maximum:
        raise CommandError(f"{name} must be between {minimum} and {maximum}, got {value}.")
    return value


class Command(BaseCommand):
    help = "Replace the rows of the export table with ROWS deterministic rows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("rows", help=f"how many rows (0 to {MAX_ROWS:,})")
        parser.add_argument(
            "--batch-size", default="5000",
            help=f"rows per bulk_create call (1 to {MAX_BATCH:,}; default 5000)",
        )

    def handle(self, *args: object, rows: str, batch_size: str, **options: object) -> None:
        count = _whole_number("rows", rows, 0, MAX_ROWS)
        batch = _whole_number("--batch-size", batch_size, 1, MAX_BATCH)
        seconds = seed(count, batch)
        self.stdout.write(f"Seeded {count} rows in {seconds:.2f} s.")
