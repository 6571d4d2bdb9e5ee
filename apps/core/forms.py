from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from . import safejson


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: per field where it names one."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class BoundedJSONField(forms.JSONField):
    """Django's JSON form field, bounded like all JSON read from outside (`apps.core.safejson`):
    text nested too deep is a form error, never a RecursionError."""

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except RecursionError:
            converted, deep = None, True
        else:
            deep = not safejson.depth_within(converted)
        if deep:
            raise ValidationError(str(safejson.JSONTooDeep()), code="invalid")
        return converted

    def bound_data(self, data, initial):
        # Redisplaying the rejected text parses it again.
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)


# For a ModelAdmin's formfield_overrides: every JSON field of its form bounded.
BOUNDED_JSON_FORMFIELDS = {models.JSONField: {"form_class": BoundedJSONField}}
