import json

from django import forms

from apps.core import safejson

from .models import ItemKind, TemplateItem


class TemplateItemForm(forms.ModelForm):
    argv = forms.CharField(
        label="Command",
        required=False,
        help_text="For worker-verified items: a JSON list, run without a shell in the checked-out "
        'after revision, e.g. ["ruff", "check", "."].',
        widget=forms.TextInput(attrs={"class": "mono"}),
    )

    class Meta:
        model = TemplateItem
        fields = ["title", "kind", "required", "argv", "timeout_seconds", "environment"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each checklist has exactly one "Tag the release", and it is always there.
        self.fields["kind"].choices = [c for c in ItemKind.choices if c[0] != ItemKind.TAG_RELEASE]
        if self.instance.pk:
            self.initial["argv"] = json.dumps(self.instance.argv) if self.instance.argv else ""

    def clean_argv(self):
        text = self.cleaned_data["argv"].strip()
        if not text:
            return []
        try:
            return safejson.loads(text)
        except ValueError:
            raise forms.ValidationError(
                'Write the command as a JSON list: ["make", "lint"].'
            ) from None
