from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm

from apps.core.admin import person

from .models import ApiToken, User
from .roles import Role
from .services import user_set_role


class UserRoleForm(UserChangeForm):
    """The user's fields, with one role in place of groups, permissions and the staff flag."""

    role = forms.ChoiceField(
        choices=[("", "— (unchanged)"), *Role.choices],
        required=False,
        help_text="Set through the role service: audited, and staff status follows it.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.role:
            self.fields["role"].initial = self.instance.role.value


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserRoleForm
    list_display = ["username", "email", "role_name", "is_active", "last_login"]
    # Groups, permissions and the staff and superuser flags decide the role: only the role
    # service writes them, so every change is audited and `is_staff` stays in step.
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "email"]}),
        ("Access", {"fields": ["role", "is_active", "is_staff", "is_superuser"]}),
        ("Important dates", {"fields": ["last_login", "date_joined"]}),
    ]
    readonly_fields = ["is_staff", "is_superuser", "last_login", "date_joined"]
    list_filter = ["is_active", "groups"]

    @admin.display(description="role")
    def role_name(self, obj):
        return obj.role.label if obj.role else "—"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        chosen = form.cleaned_data.get("role")
        if chosen and (obj.role is None or obj.role.value != chosen):
            user_set_role(actor=request.user, user=obj, role=Role(chosen))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owners (the key is shown once); admins may only revoke."""

    list_display = [
        "name",
        "owner_name",
        "prefix",
        "read_only",
        "expires_at",
        "created",
        "last_used",
    ]
    list_select_related = ["user"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = [
        "user",
        "name",
        "prefix",
        "key_hash",
        "read_only",
        "expires_at",
        "created",
        "last_used",
    ]

    def has_add_permission(self, request):
        return False

    @admin.display(description="owner", ordering="user__username")
    def owner_name(self, obj):
        return person(obj.user)
