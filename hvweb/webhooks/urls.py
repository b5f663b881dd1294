"""The webhook pages."""

from django.urls import path

from . import views

app_name = "webhooks"

urlpatterns = [
    path("webhooks/", views.endpoint_list, name="endpoints"),
    path("webhooks/<int:pk>/", views.endpoint_detail, name="endpoint"),
    path("webhooks/<int:pk>/delete/", views.endpoint_delete, name="endpoint-delete"),
]
