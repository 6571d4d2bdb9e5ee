from django.urls import path

from . import views

app_name = "checklists"
urlpatterns = [
    path("items/<int:pk>/", views.item_tick, name="tick"),
    path("changes/<int:pk>/", views.section, name="section"),
    path("changes/<int:pk>/ship/", views.ship, name="ship"),
    path("changes/<int:pk>/rollback/", views.rollback, name="rollback"),
    path("changes/<int:pk>/notes.md", views.notes, name="notes"),
    path("templates/<slug:slug>/", views.template_edit, name="template"),
    path("templates/items/<int:pk>/", views.template_item_action, name="template-item"),
]
