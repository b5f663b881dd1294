"""The moves' pages."""

from django.urls import path

from . import views

app_name = "moves"

urlpatterns = [
    path("vms/<int:pk>/migrate/", views.migrate_vm, name="migrate-vm"),
    path("vms/<int:pk>/prediction/", views.vm_prediction, name="vm-prediction"),
    path("hosts/<int:pk>/drain/", views.host_drain, name="host-drain"),
    path("hosts/<int:pk>/resume/", views.host_resume, name="host-resume"),
    path("migrations/", views.migration_list, name="migration-list"),
    path("migrations.csv", views.migration_export, name="migration-export"),
    path("migrations/events.csv", views.history_events_export, name="events-export"),
    path("migrations/<int:pk>/", views.migration_detail, name="migration"),
    path("migrations/<int:pk>/cancel/", views.migration_cancel, name="cancel"),
    path("migrations/<int:pk>/replay/", views.replay_create, name="replay-create"),
    path(
        "migrations/<int:pk>/replays/<int:replay_id>/",
        views.replay_detail,
        name="replay",
    ),
    path(
        "migrations/<int:pk>/events.csv",
        views.migration_events_export,
        name="migration-events-export",
    ),
]
