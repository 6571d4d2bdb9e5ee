from django.db import models

from apps.core.models import TimeStampedModel


class Project(TimeStampedModel):
    """A Python service whose fixes are tracked."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
