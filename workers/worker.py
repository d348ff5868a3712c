"""The worker's app and settings, read once from the environment: `celery -A restore.workers.worker worker`."""
from restore.workers.celery_app import create_celery
from restore.workers.settings import ServiceSettings

settings = ServiceSettings()
app = create_celery(settings)
