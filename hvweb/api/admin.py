"""API tokens in the admin: their prefix, owner and age, never a key.

Only superusers see them (Django's model permissions); a token is made through
``POST /api/token/`` or ``manage.py api_token create``, which show the key once.
"""

from __future__ import annotations

from django.contrib import admin

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "created_at"]
    search_fields = ["prefix", "user__username"]
    readonly_fields = ["prefix", "user", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
