from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.changes.models import Change, parse_change_number

from .models import Measurement, Profile
from .services import measurement_calibrate, measurement_cancel, measurement_request


class ProfileSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    environment = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Profile
        fields = [
            "id",
            "project",
            "name",
            "environment",
            "argv",
            "setup_argv",
            "runs_per_side",
            "warmups",
            "timeout_seconds",
            "memory_limit_mb",
            "resolution",
            "calibrated_at",
        ]
        read_only_fields = fields


class MeasurementSerializer(serializers.ModelSerializer):
    change = serializers.SerializerMethodField()
    profile = serializers.PrimaryKeyRelatedField(read_only=True)
    percent_done = serializers.IntegerField(read_only=True)

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
            "created",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_change(self, obj) -> str | None:
        return obj.change.number if obj.change_id else None


class CalibrateSerializer(serializers.Serializer):
    revision = serializers.CharField(required=False, default="HEAD", max_length=255)


class MeasureSerializer(serializers.Serializer):
    change = serializers.CharField(max_length=30, help_text="An id or a number like FIX-12.")
    profile = serializers.PrimaryKeyRelatedField(queryset=Profile.objects.all())

    def validate_change(self, value: str) -> Change:
        pk = parse_change_number(value)
        change = Change.objects.filter(pk=pk).first() if pk else None
        if change is None:
            raise serializers.ValidationError("No such change: give its id or FIX- number.")
        return change


class ProfileViewSet(viewsets.ReadOnlyModelViewSet):
    """Measurement profiles (admins define them in the admin). Anyone may calibrate one."""

    queryset = Profile.objects.select_related("project", "environment")
    serializer_class = ProfileSerializer
    throttle_scope = {"calibrate": "measure"}
    filterset_fields = ["project__slug"]

    @extend_schema(request=CalibrateSerializer, responses={201: MeasurementSerializer})
    @action(detail=True, methods=["post"])
    def calibrate(self, request, pk=None):
        """Start an A/A measurement at `revision` (default HEAD) to learn the resolution."""
        body = CalibrateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        measurement = measurement_calibrate(
            actor=request.user, profile=self.get_object(), revision=body.validated_data["revision"]
        )
        return Response(MeasurementSerializer(measurement).data, status=status.HTTP_201_CREATED)


class MeasurementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Measurements with their progress and, once done, a verdict per metric.

    Start one with `POST /api/measurements/` and `{"change": "FIX-12", "profile": 3}`.
    """

    queryset = Measurement.objects.select_related("change", "profile")
    serializer_class = MeasurementSerializer
    throttle_scope = {"create": "measure"}
    filterset_fields = ["status", "profile", "kind"]

    @extend_schema(request=MeasureSerializer, responses={201: MeasurementSerializer})
    def create(self, request):
        body = MeasureSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        measurement = measurement_request(actor=request.user, **body.validated_data)
        return Response(MeasurementSerializer(measurement).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        measurement_cancel(actor=request.user, measurement=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
