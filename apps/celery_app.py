"""The Celery application. Tasks are thin shells that take primary keys and call services."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")

app = Celery("fixledger")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
