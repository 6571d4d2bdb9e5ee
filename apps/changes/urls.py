from django.urls import path, register_converter

from . import views
from .models import NUMBER_PREFIX


class ChangeNumberConverter:
    """`FIX-12` in a URL becomes the primary key 12."""

    regex = NUMBER_PREFIX + "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value.removeprefix(NUMBER_PREFIX))

    def to_url(self, value: int) -> str:
        return f"{NUMBER_PREFIX}{value}"


register_converter(ChangeNumberConverter, "change")

app_name = "changes"
urlpatterns = [
    path("", views.change_list, name="list"),
    path("new/", views.change_create_view, name="create"),
    path("<change:pk>/", views.change_detail, name="detail"),
    path("<change:pk>/edit/", views.change_edit_view, name="edit"),
]
