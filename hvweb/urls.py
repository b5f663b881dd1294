"""URL routes: the pages, the admin, the API and the health check."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from hvweb.core.health import healthz
from hvweb.inventory import views as inventory_views
from hvweb.observe.views import metrics

urlpatterns = [
    # "/" is the cluster list; "index" stays the name the base template links to.
    path("", inventory_views.cluster_list, name="index"),
    path("", include("hvweb.inventory.urls")),
    path("", include("hvweb.moves.urls")),
    path("", include("hvweb.webhooks.urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    # Browsers ask for it on pages without an icon link (the admin's).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"))),
    path("admin/", admin.site.urls),
    path("api/", include("hvweb.api.urls")),
]

handler404 = "hvweb.api.errors.not_found"
