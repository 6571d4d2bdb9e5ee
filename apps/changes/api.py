from django.http import Http404, HttpResponse
from django.utils.encoding import smart_str
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.core.api import CappedCursorPagination, StrictStrings
from apps.projects.models import Project

from . import selectors
from .exports import change_to_markdown
from .models import DERIVED_FIELDS, Change
from .revisions import waits_for_sync
from .services import change_create, change_update
from .validators import MAX_FILES, MAX_PATH_LENGTH, MAX_TAGS


def slug_key(value) -> str:
    """The text a slug lookup compares: what the database compares a non-text value as."""
    return value if isinstance(value, str) else str(value)


class SlugRelatedField(serializers.SlugRelatedField):
    """Refuses NUL before the lookup: PostgreSQL raises on it rather than finding no row.

    Bulk writers fetch every object a file names once and pass them in the context as
    `known` ({field name: {slug_key(slug): object}}): the lookup is made there instead.
    """

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            raise serializers.ValidationError("Null characters are not allowed.")
        known = self.context.get("known", {}).get(self.field_name)
        if known is None:
            return super().to_internal_value(data)
        found = known.get(slug_key(data))
        if found is None:
            self.fail("does_not_exist", slug_name=self.slug_field, value=smart_str(data))
        return found


class LatestVerdictSerializer(serializers.Serializer):
    """The verdict of the change's latest finished measurement, as the change list shows it."""

    verdict = serializers.CharField(help_text="improved, regressed, no detectable change, …")
    metric = serializers.CharField(help_text="Key of the metric behind the verdict.")
    label = serializers.CharField(help_text="That metric as people read it, e.g. peak RSS.")
    change_pct = serializers.FloatField(
        allow_null=True, help_text="Relative change of that metric in percent (negative is less)."
    )
    measurement = serializers.IntegerField(help_text="Id of the measurement.")


class ChangeSerializer(StrictStrings, serializers.ModelSerializer):
    """A change. Field names match the web form; validation happens in the service."""

    number = serializers.CharField(read_only=True, help_text="Human id, e.g. FIX-12.")
    project = SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    owner = SlugRelatedField(
        slug_field="username",
        queryset=User.objects.filter(is_active=True),
        required=False,
        help_text="Defaults to you; only reviewers and admins may name someone else.",
    )
    files_touched = serializers.ListField(
        child=serializers.CharField(max_length=MAX_PATH_LENGTH, trim_whitespace=False),
        max_length=MAX_FILES,
        required=False,
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50), max_length=MAX_TAGS, required=False
    )
    url = serializers.SerializerMethodField()
    revisions_pending = serializers.SerializerMethodField(
        help_text="True while a worker has yet to sync the repository to resolve the revisions."
    )
    latest_verdict = serializers.SerializerMethodField(
        help_text="The verdict of the latest finished measurement; null until one finished."
    )

    class Meta:
        model = Change
        fields = [
            "id",
            "number",
            "url",
            "title",
            "project",
            "owner",
            "status",
            "reason",
            "expected_result",
            "command",
            "rollback_note",
            "files_touched",
            "base_revision",
            "head_revision",
            "tags",
            "base_sha",
            "head_sha",
            "diffstat",
            "commits",
            "revision_error",
            "revisions_pending",
            "latest_verdict",
            "created",
            "updated",
        ]
        read_only_fields = DERIVED_FIELDS

    @extend_schema_field(serializers.URLField())
    def get_url(self, obj) -> str:
        request = self.context.get("request")
        path = obj.get_absolute_url()
        return request.build_absolute_uri(path) if request else path

    def get_revisions_pending(self, obj) -> bool:
        return waits_for_sync(obj)

    @extend_schema_field(LatestVerdictSerializer(allow_null=True))
    def get_latest_verdict(self, obj):
        return obj.latest_verdict or None

    def create(self, validated_data):
        return change_create(actor=self.context["request"].user, **validated_data)

    def update(self, instance, validated_data):
        return change_update(actor=self.context["request"].user, change=instance, **validated_data)


class ChangePagination(CappedCursorPagination):
    count_cap = selectors.COUNT_CAP


class ChangeViewSet(viewsets.ModelViewSet):
    """Changes: list (filter by project, owner, status), file, read and edit.

    The list is newest first, a page at a time through its `next` links. Words are searched at
    `/api/search/`, which takes the same filters. A change is addressed by its id (`12`) or its
    number (`FIX-12`).
    """

    serializer_class = ChangeSerializer
    filterset_class = selectors.ChangeFilter
    pagination_class = ChangePagination
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    lookup_value_regex = r"(?:[Ff][Ii][Xx]-)?[0-9]+"

    def get_queryset(self):
        return selectors.change_list()

    def list(self, request, *args, **kwargs):
        # The list once took words too; ignoring them now would answer every change as if
        # they matched.
        if "q" in request.query_params:
            raise ValidationError(
                {
                    "q": [
                        "The change list does not search words: use /api/search/?q=…, which "
                        "takes the same filters."
                    ]
                }
            )
        return super().list(request, *args, **kwargs)

    def get_object(self):
        change = selectors.change_or_404(self.kwargs["pk"], self.get_queryset())
        self.check_object_permissions(self.request, change)
        return change


class ChangeExportView(APIView):
    """One change as Markdown (`export.md`) or JSON (`export.json`)."""

    @extend_schema(
        responses={
            (200, "text/markdown"): OpenApiTypes.STR,
            (200, "application/json"): ChangeSerializer,
        }
    )
    def get(self, request, ref: str, fmt: str):
        if fmt not in ("md", "json"):
            raise Http404
        change = selectors.change_or_404(ref)
        filename = f"{change.number}.{fmt}"
        if fmt == "md":
            response = HttpResponse(
                change_to_markdown(change), content_type="text/markdown; charset=utf-8"
            )
        else:
            response = Response(ChangeSerializer(change, context={"request": request}).data)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
