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


class LinesField(forms.CharField):
    """A list of strings edited as one per line (or split by `separator`), never as JSON.

    Blank items are dropped; so are repeats when `unique` (paths, tags), but not for an argv,
    whose repeated arguments mean something.
    """

    widget = forms.Textarea(attrs={"rows": 4})

    def __init__(
        self,
        *args,
        separator: str | None = None,
        lowercase: bool = False,
        unique: bool = True,
        **kwargs,
    ):
        self.separator = separator
        self.lowercase = lowercase
        self.unique = unique
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return (self.separator + " " if self.separator else "\n").join(map(str, value))
        return value

    def to_python(self, value):
        if isinstance(value, list | tuple):  # the model's initial value, unchanged
            value = self.prepare_value(value)
        text = super().to_python(value) or ""
        parts = text.split(self.separator) if self.separator else text.splitlines()
        items = [p.strip().lower() if self.lowercase else p.strip() for p in parts]
        items = [i for i in items if i]
        return list(dict.fromkeys(items)) if self.unique else items

    def has_changed(self, initial, data):
        return self.to_python(initial) != self.to_python(data)


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
