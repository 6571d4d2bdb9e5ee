from django.db import models, transaction

from .audit import audit_record, audit_update, snapshot


@transaction.atomic
def record_save(*, actor, obj: models.Model, fields: list[str]) -> models.Model:
    """Validate and save a configuration record, auditing what changed.

    For records with no lifecycle of their own (environments, profiles); callers check roles.
    """
    creating = obj.pk is None
    before = None
    if not creating:
        before = snapshot(type(obj).objects.select_for_update().get(pk=obj.pk), fields)
    obj.full_clean()
    obj.save()
    after = snapshot(obj, fields)
    if creating:
        audit_record(actor=actor, action="create", obj=obj, after=after)
    else:
        audit_update(actor=actor, obj=obj, before=before, after=after)
    return obj
