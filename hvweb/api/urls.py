"""``/api/``: the router's viewsets, the token endpoint, the schema and its docs.

The docs page is Swagger UI from the drf-spectacular-sidecar wheel. Redoc is
left out: its page template loads fonts from Google, and operators' networks
are often closed.
"""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from hvweb.webhooks.api import EndpointViewSet

from . import imports, tokens, views

app_name = "api"

router = DefaultRouter()
router.include_format_suffixes = False  # JSON only: no ".json" twin of each route
router.register("teams", views.TeamViewSet, basename="team")
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("hosts", views.HostViewSet, basename="host")
router.register("csvs", views.ClusterSharedVolumeViewSet, basename="csv")
router.register("vms", views.VirtualMachineViewSet, basename="vm")
router.register("migrations", views.MigrationViewSet, basename="migration")
router.register("webhooks", EndpointViewSet, basename="webhook")
router.register("maintenance-runs", views.MaintenanceRunViewSet, basename="run")

urlpatterns = [
    path("token/", tokens.TokenView.as_view(), name="token"),
    path("imports/", imports.ImportView.as_view(), name="import"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: the
    # Content-Security-Policy allows no inline script.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema"),
        name="docs",
    ),
    path("", include(router.urls)),
]
