"""Routes of the import page, the readiness report and the assumed workload.

Included from ``hvweb.inventory.urls``, so they share its ``inventory`` namespace.
"""

from django.urls import path

from . import import_views as views

urlpatterns = [
    path("imports/", views.import_cluster, name="import"),
    path("imports/apply/", views.apply_import, name="import-apply"),
    path(
        "clusters/<int:pk>/readiness/", views.readiness_report, name="readiness-report"
    ),
    path(
        "clusters/<int:pk>/readiness.csv",
        views.readiness_report_csv,
        name="readiness-report-csv",
    ),
    path(
        "clusters/<int:pk>/readiness.json",
        views.readiness_report_json,
        name="readiness-report-json",
    ),
    path(
        "clusters/<int:pk>/readiness.ps1",
        views.readiness_report_ps1,
        name="readiness-report-ps1",
    ),
    path("vms/<int:pk>/workload/", views.vm_workload, name="vm-workload"),
]
