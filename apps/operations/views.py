"""The workers page and its API twin: read-only, for every signed-in user."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .fleet import fleet_status


@login_required
def workers_page(request):
    return render(request, "operations/workers.html", {"fleet": fleet_status()})


class WorkerSerializer(serializers.Serializer):
    name = serializers.CharField()
    queues = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="null when the source is the database, which cannot tell.",
    )
    doing = serializers.ListField(child=serializers.CharField())


class FleetSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["broker", "database"])
    workers = WorkerSerializer(many=True)
    environment_queues = serializers.ListField(child=serializers.CharField())
    unconsumed = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField()


class WorkersView(APIView):
    """Live workers, their queues and work, and the environment queues no worker consumes."""

    @extend_schema(responses=FleetSerializer)
    def get(self, request):
        return Response(fleet_status().as_dict())
