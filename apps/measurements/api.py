from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from apps.accounts.permissions import AdminWrites
from apps.changes.models import Change
from apps.changes.selectors import change_by_ref
from apps.core import work
from apps.projects.models import Environment, Project

from . import metrics
from .lifecycle import (
    measurement_calibrate,
    measurement_cancel,
    measurement_request,
    measurement_snapshot_after,
)
from .metrics import blocking_results
from .models import Measurement, MeasurementStatus, Profile
from .profiles import PROFILE_FIELDS, profile_save
from .selectors import run_records, runs_csv


class ProfileSerializer(serializers.ModelSerializer):
    """Every field of a profile: admins write them (audited), everyone else reads."""

    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    environment = serializers.SlugRelatedField(
        slug_field="name", queryset=Environment.objects.all()
    )
    metrics = serializers.SerializerMethodField(
        help_text="Every built-in and policy-named metric as this profile judges it."
    )

    class Meta:
        model = Profile
        fields = [
            "id",
            "project",
            "name",
            "environment",
            "kind",
            "argv",
            "setup_argv",
            "env",
            "runs_per_side",
            "warmups",
            "max_runs_per_side",
            "extension_runs",
            "timeout_seconds",
            "memory_limit_mb",
            "stop_on_failure",
            "attribution",
            "metric_policy",
            "http_target",
            "ready_path",
            "startup_timeout_seconds",
            "http_plan",
            "reset",
            "metrics",
            "resolution",
            "calibrated_at",
            "created",
            "updated",
        ]
        read_only_fields = ["resolution", "calibrated_at", "created", "updated"]

    def get_metrics(self, obj) -> list[dict]:
        policy = metrics.policy_of(obj)
        named = [
            policy.metric(key)
            for key in sorted(policy.known_keys() - set(m.key for m in policy.builtin()))
        ]
        return [m.as_dict() for m in (*policy.builtin(), *named)]

    def validate(self, attrs):
        # The model's cross-field rules (maximum runs, block size) on the values as they will be.
        instance = Profile(**{**self._current(), **attrs})
        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {f: getattr(self.instance, f) for f in PROFILE_FIELDS}

    def create(self, validated_data):
        return profile_save(actor=self.context["request"].user, profile=Profile(**validated_data))

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return profile_save(actor=self.context["request"].user, profile=instance)


class RunSerializer(serializers.Serializer):
    """One run as the measurement's page shows it."""

    sequence = serializers.IntegerField(help_text="Order in the interleaved plan, from 1.")
    side = serializers.CharField()
    warmup = serializers.BooleanField()
    status = serializers.CharField()
    exit_code = serializers.IntegerField(allow_null=True)
    worker = serializers.CharField(help_text="The worker that ran it (`queue@host`).")
    duration_seconds = serializers.FloatField(allow_null=True)
    metrics = serializers.DictField(
        child=serializers.DictField(), help_text="Per metric key: label, value, unit."
    )
    outlier = serializers.BooleanField(
        help_text="A metric lies > 3.5 robust standard deviations (and 2 %) from its side's median."
    )
    outlier_metrics = serializers.ListField(child=serializers.CharField())
    failure = serializers.CharField()
    output_tail = serializers.CharField()


class RunsCSVRenderer(BaseRenderer):
    """`?format=csv`: the runs as the page's CSV download."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, list):
            return runs_csv(data)
        return "\n".join(f"{key},{value}" for key, value in (data or {}).items())


class MeasurementSerializer(serializers.ModelSerializer):
    change = serializers.SerializerMethodField()
    profile = serializers.PrimaryKeyRelatedField(read_only=True)
    percent_done = serializers.IntegerField(read_only=True)
    blockers = serializers.SerializerMethodField(
        help_text="The results that would stop the change's release under the profile's "
        "metric policy (a gating or critical regression, or no evidence), each with why."
    )

    class Meta:
        model = Measurement
        fields = [
            "id",
            "change",
            "profile",
            "kind",
            "status",
            "phase",
            "base_sha",
            "head_sha",
            "runs_planned",
            "runs_done",
            "percent_done",
            "worker",
            "error",
            "results",
            "expectation",
            "design",
            "extensions",
            "blockers",
            "config_at_start",
            "config_at_end",
            "created",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_change(self, obj) -> str | None:
        return obj.change.number if obj.change_id else None

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_blockers(self, obj) -> list[dict]:
        if obj.status != MeasurementStatus.DONE:
            return []
        return [{"metric": key, "text": text} for key, text in blocking_results(obj)]


class CalibrateSerializer(serializers.Serializer):
    revision = serializers.CharField(required=False, default="HEAD", max_length=255)


class MeasureSerializer(serializers.Serializer):
    change = serializers.CharField(max_length=30, help_text="An id or a number like FIX-12.")
    profile = serializers.PrimaryKeyRelatedField(queryset=Profile.objects.all())

    def validate_change(self, value: str) -> Change:
        change = change_by_ref(value)
        if change is None:
            raise serializers.ValidationError("No such change: give its id or FIX- number.")
        return change


class ProfileViewSet(viewsets.ModelViewSet):
    """Measurement profiles: what workers run and how verdicts are judged.

    Everyone reads; admins create and edit every field (command, setup, environment
    variables, limits, metric policy, adaptive runs; for `kind: "http"` the target, readiness
    path, start-up timeout, request plan and reset step), audited. Anyone may calibrate one.
    """

    queryset = Profile.objects.select_related("project", "environment")
    serializer_class = ProfileSerializer
    throttle_scope = {"calibrate": "measure"}
    # By name within a project: how CI names a profile (`fixledger measure --profile NAME`).
    filterset_fields = ["project__slug", "name"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_permissions(self):
        # Calibrating is a measurement request (engineers), not an edit of the profile.
        if self.action == "calibrate":
            return super().get_permissions()
        return [AdminWrites()]

    @extend_schema(
        request=CalibrateSerializer,
        responses={201: MeasurementSerializer, 202: MeasurementSerializer},
    )
    @action(detail=True, methods=["post"])
    def calibrate(self, request, pk=None):
        """Start an A/A measurement at `revision` (default HEAD) to learn the resolution.

        202 (with a `detail`) instead of 201: created, but the broker is down; it starts when
        the broker is back.
        """
        body = CalibrateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with work.publishing() as sent:
            measurement = measurement_calibrate(
                actor=request.user,
                profile=self.get_object(),
                revision=body.validated_data["revision"],
            )
        return _created(measurement, sent)


def _created(measurement: Measurement, sent: work.Publishing) -> Response:
    data = MeasurementSerializer(measurement).data
    if not sent.ok:
        return Response({**data, "detail": work.BROKER_DOWN}, status=status.HTTP_202_ACCEPTED)
    return Response(data, status=status.HTTP_201_CREATED)


class MeasurementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Measurements with their progress and, once done, a verdict per metric.

    Start one with `POST /api/measurements/` and `{"change": "FIX-12", "profile": 3}`.
    """

    queryset = Measurement.objects.select_related("change", "profile")
    serializer_class = MeasurementSerializer
    throttle_scope = {"create": "measure"}
    # `change` (its id): a CI job run again finds the measurement it started before.
    filterset_fields = ["status", "profile", "kind", "change"]

    @extend_schema(
        request=MeasureSerializer,
        responses={201: MeasurementSerializer, 202: MeasurementSerializer},
    )
    def create(self, request):
        """Measure a change; 202 (with a `detail`) instead of 201 when the broker is down: the
        measurement is created and starts when the broker is back."""
        body = MeasureSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with work.publishing() as sent:
            measurement = measurement_request(actor=request.user, **body.validated_data)
        return _created(measurement, sent)

    @extend_schema(request=None, responses={201: MeasurementSerializer, 202: MeasurementSerializer})
    @action(detail=True, methods=["post"])
    def after(self, request, pk=None):
        """Live staging: once the fix is deployed, take the after snapshot of a measurement
        waiting for it (`status: "waiting"`) and compare. 202 when the broker is down."""
        with work.publishing() as sent:
            measurement = measurement_snapshot_after(
                actor=request.user, measurement=self.get_object()
            )
        return _created(measurement, sent)

    @extend_schema(responses={200: RunSerializer(many=True)})
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[JSONRenderer, BrowsableAPIRenderer, RunsCSVRenderer],
        pagination_class=None,
        filterset_fields=None,
    )
    def runs(self, request, pk=None):
        """Every run: side, order, metrics, exit code, duration, output tail, outlier flag.

        `?format=csv` (or `Accept: text/csv`) gives the same as a CSV file.
        """
        measurement = self.get_object()
        records = run_records(measurement)
        response = Response(RunSerializer(records, many=True).data)
        if request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = (
                f'attachment; filename="measurement-{measurement.pk}-runs.csv"'
            )
        return response

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        measurement_cancel(actor=request.user, measurement=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
