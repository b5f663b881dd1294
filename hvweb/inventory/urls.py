"""The inventory's pages."""

from django.urls import include, path

from . import views

app_name = "inventory"

urlpatterns = [
    path("", views.cluster_list, name="cluster-list"),
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster"),
    path("hosts/<int:pk>/", views.host_detail, name="host"),
    path("vms/<int:pk>/", views.vm_detail, name="vm"),
    path("vms/<int:pk>/configure-ha/", views.vm_configure_ha, name="vm-configure-ha"),
    path("", include("hvweb.inventory.import_urls")),
]
