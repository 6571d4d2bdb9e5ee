from django import forms
from django.contrib import admin, messages

from apps.core.admin import ReadOnlyAdmin

from .models import Delivery, Endpoint
from .services import endpoint_save


class EndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    regenerate_secret = forms.BooleanField(
        required=False,
        help_text="Make a new signing secret; receivers must be given it, the old one stops "
        "working. A new endpoint always gets one. It is shown once, after saving.",
    )

    class Meta:
        model = Endpoint
        fields = ["name", "kind", "url", "active"]


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    """Where webhooks and Slack messages may go. The secret is never shown again after the
    message that follows its creation."""

    form = EndpointForm
    list_display = ["name", "kind", "url", "active", "updated"]
    list_filter = ["kind", "active"]
    search_fields = ["name", "url"]

    def save_model(self, request, obj, form, change):
        if not change or form.cleaned_data.get("regenerate_secret"):
            obj.secret = ""
        secret = endpoint_save(actor=request.user, endpoint=obj)
        if secret and obj.kind == "webhook":
            messages.warning(
                request,
                f"Signing secret of “{obj.name}”, shown only now — give it to the receiver: "
                f"{secret}",
            )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """Every notification sent or tried, as the workers left it."""

    deletable = False
    list_display = ["created", "event", "change", "recipient_name", "channel", "status", "attempts"]
    list_filter = ["status", "event", "channel"]
    search_fields = ["recipient_name", "subject", "error", "dedupe_key"]
    date_hierarchy = "created"
    exclude = ["payload"]
