"""The workers page and its API twin: read-only, for every signed-in user."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from rest_framework.response import Response
from rest_framework.views import APIView

from .fleet import fleet_status


@login_required
def workers_page(request):
    return render(request, "core/workers.html", {"fleet": fleet_status()})


class WorkersView(APIView):
    """Live workers, their queues and work, and the environment queues no worker consumes."""

    def get(self, request):
        return Response(fleet_status().as_dict())
