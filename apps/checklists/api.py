from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.changes.api import ChangeSerializer
from apps.changes.models import Change
from apps.changes.selectors import change_or_404
from apps.core import work

from .models import ChecklistItem, ItemState
from .rollback import change_rollback
from .shipping import change_ship
from .ticks import checklist_item_tick
from .verification import checklist_item_verify_request


class ChecklistItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChecklistItem
        fields = [
            "id",
            "position",
            "title",
            "kind",
            "required",
            "state",
            "reason",
            "actor_name",
            "ticked_at",
            "version",
            "verification",
            "evidence",
        ]
        read_only_fields = fields


class TickSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=ItemState.choices)
    version = serializers.IntegerField(
        min_value=1, help_text="The item's version as you last saw it; a stale one gets a 409."
    )
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class ShipSerializer(serializers.Serializer):
    override_reason = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="Admins only: ship despite the blockers, for this reason (audited).",
    )


def _change(key: str) -> Change:
    return change_or_404(key)


class ChecklistView(APIView):
    """A change's release checklist."""

    @extend_schema(responses=ChecklistItemSerializer(many=True))
    def get(self, request, key: str):
        items = _change(key).checklist.all()
        return Response(ChecklistItemSerializer(items, many=True).data)


class ChecklistItemView(APIView):
    """Tick (`done`), untick (`open`) or skip (`skipped`, with a reason) one item."""

    def _item(self, key: str, pk: int) -> ChecklistItem:
        return get_object_or_404(ChecklistItem, pk=pk, change=_change(key))

    @extend_schema(responses=ChecklistItemSerializer)
    def get(self, request, key: str, pk: int):
        return Response(ChecklistItemSerializer(self._item(key, pk)).data)

    @extend_schema(request=TickSerializer, responses=ChecklistItemSerializer)
    def patch(self, request, key: str, pk: int):
        body = TickSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = checklist_item_tick(
            actor=request.user, item=self._item(key, pk), **body.validated_data
        )
        return Response(ChecklistItemSerializer(item).data)


class ChecklistItemVerifyView(APIView):
    """Ask a worker to verify the item with its admin-defined command."""

    @extend_schema(request=VersionSerializer, responses={202: ChecklistItemSerializer})
    def post(self, request, key: str, pk: int):
        body = VersionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = get_object_or_404(ChecklistItem, pk=pk, change=_change(key))
        with work.publishing() as sent:
            item = checklist_item_verify_request(
                actor=request.user, item=item, version=body.validated_data["version"]
            )
        data = ChecklistItemSerializer(item).data
        if not sent.ok:
            data = {**data, "detail": work.BROKER_DOWN}
        return Response(data, status=status.HTTP_202_ACCEPTED)


class ShipView(APIView):
    """Tag the release: refused, with the reasons, until the checklist and verdicts allow it."""

    @extend_schema(request=ShipSerializer, responses=ChangeSerializer)
    def post(self, request, key: str):
        body = ShipSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = change_ship(
            actor=request.user,
            change=_change(key),
            override_reason=body.validated_data["override_reason"],
        )
        return Response(ChangeSerializer(change, context={"request": request}).data)


class RollbackView(APIView):
    """File the reverse of a shipped change."""

    @extend_schema(request=None, responses={201: ChangeSerializer})
    def post(self, request, key: str):
        reverse = change_rollback(actor=request.user, change=_change(key))
        return Response(
            ChangeSerializer(reverse, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )
