"""The maintenance pages."""

from django.urls import path

from . import views

app_name = "maintenance"

urlpatterns = [
    path("hosts/<int:pk>/drain/plan/", views.drain_plan, name="drain-plan"),
    path("hosts/<int:pk>/failback/plan/", views.failback_plan, name="failback-plan"),
    path("hosts/<int:pk>/failback/", views.failback, name="failback"),
    path("clusters/<int:pk>/maintenance/", views.run_new, name="run-new"),
    path("clusters/<int:pk>/balance/", views.balance, name="balance"),
    path("maintenance/", views.run_list, name="run-list"),
    path("maintenance/<int:pk>/", views.run_detail, name="run"),
    path("maintenance/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("drains/", views.drain_list, name="drain-list"),
    path("drains/<int:pk>/", views.drain_detail, name="drain"),
]
