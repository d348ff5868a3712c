"""The HTTP edge: FastAPI routes over the job store and the Celery queue."""
