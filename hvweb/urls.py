"""URL routes: the pages, the admin, the API and the health check."""

from django.contrib import admin
from django.urls import path

from hvweb.core import views
from hvweb.core.health import healthz

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
