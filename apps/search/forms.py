"""The search parameters, parsed the same way for the page, the API and exports."""

from django import forms
from django.core.exceptions import ValidationError

from apps.accounts.models import User
from apps.changes.models import ChangeStatus
from apps.measurements.stats import Verdict, canonical_metric
from apps.projects.models import Project

from . import query
from .selectors import SearchParams, SortOrder, metric_known

MAX_PAGE = 10_000


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=query.MAX_QUERY_LENGTH, strip=True)
    path = forms.CharField(required=False, max_length=300, help_text="Part of a file path.")
    project = forms.ModelChoiceField(
        Project.objects.order_by("name"),
        required=False,
        to_field_name="slug",
        empty_label="All projects",
    )
    owner = forms.ModelChoiceField(
        User.objects.order_by("username"), required=False, to_field_name="username"
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *ChangeStatus.choices], required=False)
    verdict = forms.ChoiceField(
        choices=[("", "Any verdict")] + [(v.value, v.value) for v in Verdict], required=False
    )
    tag = forms.CharField(required=False, max_length=50)
    date_from = forms.DateField(required=False, label="Filed from")
    date_to = forms.DateField(required=False, label="Filed until")
    gain_metric = forms.CharField(
        required=False,
        max_length=100,
        label="Metric",
        help_text="A label or key: peak RSS, wall time, CPU time, …",
    )
    gain_min = forms.FloatField(
        required=False, min_value=-1000, max_value=1000, label="Gain at least (%)"
    )
    sort = forms.ChoiceField(choices=[("", "Best first"), *SortOrder.CHOICES], required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE)

    def clean_q(self):
        value = self.cleaned_data["q"]
        try:
            query.parse(value)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["q"]) from exc
        return value

    def clean_path(self):
        value = self.cleaned_data["path"].strip()
        if "\x00" in value:
            raise ValidationError("Null characters are not allowed.")
        return value

    def clean_gain_metric(self):
        value = self.cleaned_data["gain_metric"].strip()
        if not value:
            return value
        # People type labels ("peak RSS", "CPU time"); the index knows keys.
        key = canonical_metric(value)
        if not metric_known(key):
            raise ValidationError(f"No measured change has a metric named “{value}”.")
        return key

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def params(self, *, page_size: int = 20) -> SearchParams:
        data = self.cleaned_data
        return SearchParams(
            q=data.get("q") or "",
            path=data.get("path") or "",
            project=data.get("project"),
            owner=data.get("owner"),
            status=data.get("status") or "",
            verdict=data.get("verdict") or "",
            tag=data.get("tag") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            gain_metric=data.get("gain_metric") or "",
            gain_min=data.get("gain_min"),
            sort=data.get("sort") or "",
            page=data.get("page") or 1,
            page_size=page_size,
        )
