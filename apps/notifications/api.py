"""Notifications in the API: one's own preferences, and a change's deliveries."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.changes.selectors import change_or_404

from .models import Delivery, EventKind
from .selectors import change_deliveries, destination_by_key, destinations, preference_rows
from .services import preferences_set


class DestinationSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="`email`, or `endpoint-<id>` for a registered one.")
    channel = serializers.CharField()
    name = serializers.CharField(source="label")


class ChoiceSerializer(serializers.Serializer):
    event = serializers.ChoiceField(choices=EventKind.choices)
    destination = serializers.CharField(
        max_length=40, help_text="A destination key from `destinations`; never a URL."
    )
    enabled = serializers.BooleanField()

    def validate_destination(self, value):
        destination = destination_by_key(value)
        if destination is None:
            keys = ", ".join(d.key for d in destinations())
            raise serializers.ValidationError(
                f"Not a registered destination; choose one of: {keys}. Admins register "
                "webhook and Slack URLs."
            )
        return destination


class PreferencesSerializer(serializers.Serializer):
    destinations = DestinationSerializer(many=True, read_only=True)
    preferences = ChoiceSerializer(many=True)

    def to_internal_value(self, data):
        unknown = set(data) - {"preferences"} if isinstance(data, dict) else set()
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field; only `preferences` can be written."] for name in unknown}
            )
        return super().to_internal_value(data)


def _preferences(user) -> dict:
    return {
        "destinations": destinations(),
        "preferences": [
            {"event": row.kind.value, "destination": d.key, "enabled": on}
            for row in preference_rows(user)
            for d, on in row.cells
        ],
    }


class PreferencesView(APIView):
    """What you hear, where: every kind of event against every destination (email and the
    endpoints admins registered). PUT or PATCH the choices to change; those you leave out stay
    as they are."""

    @extend_schema(responses=PreferencesSerializer)
    def get(self, request):
        return Response(PreferencesSerializer(_preferences(request.user)).data)

    @extend_schema(request=PreferencesSerializer, responses=PreferencesSerializer)
    def put(self, request):
        body = PreferencesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        choices = [
            (c["event"], c["destination"], c["enabled"]) for c in body.validated_data["preferences"]
        ]
        try:
            preferences_set(actor=request.user, user=request.user, choices=choices)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return Response(PreferencesSerializer(_preferences(request.user)).data)

    patch = put


class DeliverySerializer(serializers.ModelSerializer):
    destination = serializers.CharField(read_only=True)
    recipient = serializers.CharField(source="recipient_name", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event",
            "recipient",
            "channel",
            "destination",
            "subject",
            "status",
            "attempts",
            "error",
            "created",
            "attempted_at",
            "sent_at",
        ]
        read_only_fields = fields


class ChangeDeliveriesView(generics.ListAPIView):
    """What was sent (or tried) about a change: to whom, how, and why it failed if it did."""

    serializer_class = DeliverySerializer
    filter_backends = []

    def get_queryset(self):
        return change_deliveries(change_or_404(self.kwargs["key"]))
