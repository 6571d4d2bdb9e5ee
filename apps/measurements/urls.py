from django.urls import path

from . import views

app_name = "measurements"
urlpatterns = [
    path("<int:pk>/", views.measurement_detail, name="detail"),
    path("<int:pk>/runs.csv", views.measurement_runs_csv, name="runs_csv"),
    path("<int:pk>/cancel/", views.measurement_cancel_view, name="cancel"),
    path("<int:pk>/after/", views.measurement_after, name="after"),
    path("changes/<int:pk>/", views.section, name="section"),
    path("profiles/<int:pk>/calibrate/", views.profile_calibrate, name="calibrate"),
]
