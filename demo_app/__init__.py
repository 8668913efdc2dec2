"""The Django project the notebooks serve: CSV downloads, plain and streamed."""
