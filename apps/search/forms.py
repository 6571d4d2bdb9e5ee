"""The search parameters, parsed the same way for the page, the API and exports."""

from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from apps.accounts.models import User
from apps.changes.models import ChangeStatus
from apps.measurements.metrics import all_builtin, label_of
from apps.measurements.stats import Verdict, canonical_metric
from apps.projects.models import Project

from . import query
from .selectors import SearchParams, SortOrder, metric_known

MAX_PAGE = 10_000


class MetricField(forms.ChoiceField):
    """A metric chosen by its label; a key, an alias or a label typed in a URL is accepted too
    ("peak RSS", "rss" and `peak_rss` are one metric), and a measured custom metric as well."""

    default_error_messages = {
        "invalid_choice": "No measured change has a metric named “%(value)s”.",
    }

    def to_python(self, value):
        value = super().to_python(value).strip()
        return canonical_metric(value) if value else value

    def valid_value(self, value):
        return super().valid_value(value) or metric_known(value)


def metric_choices() -> list[tuple[str, str]]:
    return [("", "Any metric")] + [(m.key, m.label) for m in all_builtin().values()]


@dataclass(frozen=True)
class ActiveFilter:
    """One filter in effect, shown as a chip that removes it."""

    name: str
    label: str
    value: str
    without: str  # the query string without this filter


# The filters a search page shows as chips, in the order of the form.
FILTERS = (
    "path",
    "project",
    "owner",
    "status",
    "verdict",
    "tag",
    "date_from",
    "date_to",
    "gain_metric",
    "gain_min",
    "sort",
)


class SearchForm(forms.Form):
    q = forms.CharField(
        required=False, max_length=query.MAX_QUERY_LENGTH, strip=True, label="Words"
    )
    path = forms.CharField(required=False, max_length=300, help_text="Part of a file path.")
    project = forms.ModelChoiceField(
        Project.objects.order_by("name"),
        required=False,
        to_field_name="slug",
        empty_label="All projects",
    )
    owner = forms.ModelChoiceField(
        User.objects.order_by("username"),
        required=False,
        to_field_name="username",
        empty_label="Anyone",
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *ChangeStatus.choices], required=False)
    verdict = forms.ChoiceField(
        choices=[("", "Any verdict")] + [(v.value, v.value) for v in Verdict], required=False
    )
    tag = forms.CharField(required=False, max_length=50)
    date_from = forms.DateField(required=False, label="Filed from")
    date_to = forms.DateField(required=False, label="Filed until")
    gain_metric = MetricField(required=False, label="Metric", choices=metric_choices)
    gain_min = forms.FloatField(
        required=False, min_value=-1000, max_value=1000, label="Gain at least (%)"
    )
    sort = forms.ChoiceField(
        choices=[("", "Best first"), *SortOrder.CHOICES], required=False, label="Sort by"
    )
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        metric = self.fields["gain_metric"]
        raw = self.data.get("gain_metric", "") if self.is_bound else ""
        key = canonical_metric(raw) if raw.strip() else ""
        if key and key != raw:
            # "peak RSS" in a URL is shown as the option it names.
            self.data = self.data.copy()
            self.data["gain_metric"] = key
        if key and key not in dict(metric.choices) and metric_known(key):
            # A measured custom metric is shown as chosen, not as "Any metric".
            metric.choices = [*metric.choices, (key, label_of(key))]

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def error_texts(self) -> list[str]:
        """Every error in words: the field's label, never its key."""
        texts = list(self.non_field_errors())
        for name, errors in self.errors.items():
            if name != forms.forms.NON_FIELD_ERRORS:
                texts.append(f"{self[name].label}: {' '.join(errors)}")
        return texts

    def active_filters(self) -> list["ActiveFilter"]:
        """The filters in effect, each with the query string that drops only it (and the page)."""
        if not self.is_bound or not hasattr(self, "cleaned_data"):
            return []
        chips = []
        for name in FILTERS:
            value = self.cleaned_data.get(name)
            if value in (None, "") or name in self.errors:
                continue
            rest = QueryDict(mutable=True)
            for key, values in self.data.lists():
                if key not in (name, "page"):
                    rest.setlist(key, values)
            chips.append(
                ActiveFilter(
                    name=name,
                    label=self[name].label,
                    value=self._shown(name, value),
                    without=rest.urlencode(),
                )
            )
        return chips

    def _shown(self, name: str, value) -> str:
        field = self.fields[name]
        if name == "project":
            return value.name
        if name == "owner":
            return value.get_username()
        if name == "gain_min":
            return f"≥ {value:g} %"
        if hasattr(field, "choices") and not isinstance(field, forms.ModelChoiceField):
            return str(dict(field.choices).get(value, value))
        return str(value)

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
