from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from apps.changes.api import ChangeViewSet
from apps.checklists import api as checklist_api
from apps.measurements import views as measurement_views
from apps.measurements.api import MeasurementViewSet, ProfileViewSet
from apps.notifications import api as notification_api
from apps.operations import views as operations_views
from apps.projects.api import EnvironmentViewSet, ProjectViewSet

handler400 = "apps.core.api.bad_request_view"
handler404 = "apps.core.api.not_found"

router = DefaultRouter()
router.register("changes", ChangeViewSet, basename="change")
router.register("projects", ProjectViewSet, basename="project")
router.register("environments", EnvironmentViewSet, basename="environment")
router.register("profiles", ProfileViewSet, basename="profile")
router.register("measurements", MeasurementViewSet, basename="measurement")

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="changes:list", permanent=False)),
    path("workers/", operations_views.workers_page, name="workers"),
    path("api/workers/", operations_views.WorkersView.as_view(), name="api-workers"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/notifications/", include("apps.notifications.urls")),
    path("account/", include("apps.accounts.urls")),
    path("changes/", include("apps.changes.urls")),
    # Measurements build on changes: their start sits under the change, routed from here.
    path(
        "changes/<change:pk>/measure/",
        measurement_views.measurement_start,
        name="change-measure",
    ),
    path("projects/", include("apps.projects.urls")),
    path("measurements/", include("apps.measurements.urls")),
    path("checklists/", include("apps.checklists.urls")),
    path("api/changes/<str:key>/checklist/", checklist_api.ChecklistView.as_view()),
    path("api/changes/<str:key>/checklist/<int:pk>/", checklist_api.ChecklistItemView.as_view()),
    path(
        "api/changes/<str:key>/checklist/<int:pk>/verify/",
        checklist_api.ChecklistItemVerifyView.as_view(),
    ),
    path("api/changes/<str:key>/ship/", checklist_api.ShipView.as_view()),
    path("api/changes/<str:key>/deliveries/", notification_api.ChangeDeliveriesView.as_view()),
    path("api/notifications/preferences/", notification_api.PreferencesView.as_view()),
    path("api/changes/<str:key>/rollback/", checklist_api.RollbackView.as_view()),
    path("", include("apps.search.urls")),
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
