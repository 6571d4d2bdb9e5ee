from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models


class TimeStampedModel(models.Model):
    """Base for records that keep when they were created and last updated."""

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ClaimedWork(models.Model):
    """Base for rows that are work a worker claims: who holds it, whether it is alive.

    `attempts` counts claims and fences them: a worker whose row was claimed again (because it
    stopped heart-beating) sees the count move and stops. `published_at` is when a message for
    it last reached the broker; apps.core.work publishes it again when that was long ago and
    nobody claimed it, under the `request_id` of the request that queued it.
    """

    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    published_at = models.DateTimeField(null=True, blank=True)
    # The id of the request that queued it: beat's re-publishes carry it too, so the worker's
    # log lines and audit entries name that request whichever message reached the worker.
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        abstract = True


class AuditAction(models.TextChoices):
    CREATE = "create", "created"
    UPDATE = "update", "updated"
    DELETE = "delete", "deleted"


class AuditEntry(models.Model):
    """Who did what to which object, when, with the values before and after.

    The object's label and the actor's name are frozen at the time of the action so the trail
    still reads correctly after either is renamed or deleted.
    """

    time = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=32)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    object_label = models.CharField(max_length=250)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_entries",
    )
    actor_name = models.CharField(max_length=150)
    request_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # The history tab of one object, newest first.
            models.Index(
                fields=["content_type", "object_id", "-time"], name="audit_object_time_idx"
            ),
            # An actor's recent activity.
            models.Index(fields=["actor", "-time"], name="audit_actor_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.object_label}"

    def changed_fields(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for every field whose value differs, by field name.

        Sorted because PostgreSQL's jsonb does not keep the order the keys were written in.
        """
        before = self.before or {}
        after = self.after or {}
        keys = sorted({*before.keys(), *after.keys()})
        return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]
