"""Both the page (`/search/`) and the API (`/api/search/`), so apps/urls.py needs one include."""

from django.urls import path

from . import api, views

app_name = "search"
urlpatterns = [
    path("search/", views.search_page, name="page"),
    path("api/search/", api.SearchView.as_view(), name="api"),
    path("api/search/export/", api.SearchExportView.as_view(), name="api-export"),
    path(
        "api/search/changes/<str:ref>/export.<str:fmt>",
        api.ChangeExportView.as_view(),
        name="api-change-export",
    ),
]
