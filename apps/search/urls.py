"""Both the page (`/search/`) and the API (`/api/search/`), so apps/urls.py needs one include.
One change's export (changes' own view) keeps its address next to the search export."""

from django.urls import path

from apps.changes.api import ChangeExportView

from . import api, views

app_name = "search"
urlpatterns = [
    path("search/", views.search_page, name="page"),
    path("api/search/", api.SearchView.as_view(), name="api"),
    path("api/search/export/", api.SearchExportView.as_view(), name="api-export"),
    path(
        "api/search/changes/<str:ref>/export.<str:fmt>",
        ChangeExportView.as_view(),
        name="api-change-export",
    ),
]
