"""The maintenance pages."""

from django.urls import path

from . import views

app_name = "maintenance"

urlpatterns = [
    path("hosts/<int:pk>/drain/plan/", views.drain_plan, name="drain-plan"),
    path("drains/", views.drain_list, name="drain-list"),
    path("drains/<int:pk>/", views.drain_detail, name="drain"),
]
