"""The moves' pages."""

from django.urls import path

from . import views

app_name = "moves"

urlpatterns = [
    path("vms/<int:pk>/migrate/", views.migrate_vm, name="migrate-vm"),
    path("migrations/", views.migration_list, name="migration-list"),
    path("migrations/<int:pk>/", views.migration_detail, name="migration"),
    path("migrations/<int:pk>/cancel/", views.migration_cancel, name="cancel"),
]
