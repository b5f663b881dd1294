from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "hvweb.api"
    verbose_name = "REST API"
