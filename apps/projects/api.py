from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.permissions import AdminWrites
from apps.core import work
from apps.core.api import StrictStrings

from .models import Environment, Project
from .services import environment_save, project_create, project_sync_request, project_update


class ProjectSerializer(StrictStrings, serializers.ModelSerializer):
    """A project and the state of its repository clone. Admins register and edit projects."""

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "slug",
            "repository_url",
            "sync_status",
            "sync_error",
            "synced_at",
            "created",
            "updated",
        ]
        read_only_fields = ["sync_status", "sync_error", "synced_at", "created", "updated"]

    def create(self, validated_data):
        return project_create(actor=self.context["request"].user, **validated_data)

    def update(self, instance, validated_data):
        return project_update(
            actor=self.context["request"].user, project=instance, **validated_data
        )


class ProjectViewSet(viewsets.ModelViewSet):
    """Projects whose changes are tracked. Everyone reads; admins register and edit; engineers
    and above ask for a sync."""

    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    lookup_field = "slug"
    # Only what a SlugField can hold, so a slug PostgreSQL cannot even compare (one with a NUL)
    # is a 404 rather than a 500.
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    filterset_fields = ["slug", "sync_status"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"])
    def sync(self, request, slug=None):
        """Ask a worker to fetch the project's repository now (engineers and above)."""
        with work.publishing() as sent:
            project_sync_request(actor=request.user, project=self.get_object())
        if not sent.ok:
            return Response({"detail": work.BROKER_DOWN}, status=status.HTTP_202_ACCEPTED)
        return Response(status=status.HTTP_202_ACCEPTED)


class EnvironmentSerializer(serializers.ModelSerializer):
    """Where measurements run: each environment has its own worker queue."""

    class Meta:
        model = Environment
        fields = ["id", "name", "description", "base_url", "config_files", "created", "updated"]
        read_only_fields = ["created", "updated"]

    def create(self, validated_data):
        return environment_save(
            actor=self.context["request"].user, environment=Environment(**validated_data)
        )

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return environment_save(actor=self.context["request"].user, environment=instance)


class EnvironmentViewSet(viewsets.ModelViewSet):
    """Environments. Everyone reads; admins register and edit them (audited), e.g. from CI."""

    queryset = Environment.objects.all()
    serializer_class = EnvironmentSerializer
    permission_classes = [AdminWrites]
    filterset_fields = ["name"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
