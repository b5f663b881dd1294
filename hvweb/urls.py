"""URL routes: the pages, the admin, the API and the health check."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from hvweb.core.health import healthz
from hvweb.inventory import views as inventory_views
from hvweb.inventory.admin_shortcut import view_on_site
from hvweb.observe.views import metrics

urlpatterns = [
    # "/" is the cluster list; "index" stays the name the base template links to.
    path("", inventory_views.cluster_list, name="index"),
    path("", include("hvweb.inventory.urls")),
    path("", include("hvweb.moves.urls")),
    path("", include("hvweb.maintenance.urls")),
    path("", include("hvweb.webhooks.urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    # Browsers ask for it on pages without an icon link (the admin's).
    # Resolved at the request: the hashed name needs the collected manifest,
    # which does not exist yet when the launcher migrates a fresh data folder.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg"))),
    # Before the admin's own "view on site" redirect, which answered 302 for
    # another team's object and 404 for a missing one.
    path(
        "admin/r/<int:content_type_id>/<path:object_id>/",
        admin.site.admin_view(view_on_site),
        name="admin-view-on-site",
    ),
    path("admin/", admin.site.urls),
    path("api/", include("hvweb.api.urls")),
]

handler400 = "hvweb.api.errors.bad_request"
handler404 = "hvweb.api.errors.not_found"
