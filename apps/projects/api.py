from rest_framework import serializers, viewsets

from .models import Project


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "name", "slug", "created", "updated"]


class ProjectViewSet(viewsets.ReadOnlyModelViewSet):
    """Projects whose changes are tracked. Admins register them."""

    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    lookup_field = "slug"
    filterset_fields = ["slug"]
