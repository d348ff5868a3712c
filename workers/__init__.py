"""The Celery side of the service: app, job store, and the task that runs restore.pipeline."""
