from django import forms

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.core.forms import LinesField

from .models import Change


class ChangeForm(forms.ModelForm):
    """Filing and editing a change. Model validators run here and again in the service."""

    files_touched = LinesField(
        help_text="One path per line, relative to the repository root. Leave it empty to "
        "fill it from the git diff between the revisions.",
    )
    tags = LinesField(
        separator=",",
        lowercase=True,
        widget=forms.TextInput(),
        help_text="Comma-separated, e.g. memory, cache.",
    )

    class Meta:
        model = Change
        fields = [
            "title",
            "project",
            "owner",
            "reason",
            "expected_result",
            "command",
            "rollback_note",
            "base_revision",
            "head_revision",
            "files_touched",
            "tags",
        ]
        widgets = {
            "reason": forms.Textarea(attrs={"rows": 4}),
            "expected_result": forms.Textarea(attrs={"rows": 2}),
            "command": forms.Textarea(attrs={"rows": 2, "class": "mono"}),
            "rollback_note": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, actor: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].empty_label = None
        self.fields["expected_result"].help_text = (
            "What should improve, checked against the measurement: a metric's label and a "
            "signed change, e.g. “peak RSS -20 %”, “CPU time -10 %”, “wall time down 5 %”; "
            "or free words, which are kept but not checked."
        )
        if actor.has_role(Role.REVIEWER):
            engineers = (
                User.objects.filter(
                    is_active=True, groups__name__in=[Role.ENGINEER, Role.REVIEWER, Role.ADMIN]
                )
                .distinct()
                .order_by("username")
            )
            self.fields["owner"].queryset = engineers
            self.fields["owner"].required = False
            self.fields["owner"].help_text = "Leave empty to own it yourself."
        else:
            del self.fields["owner"]
