"""Team roles for the API, on top of the querysets' restriction to "view".

Reading needs a role in the object's team (``get_queryset`` already restricts
to that, so others' objects are 404). Acting needs the action the view names:
``administer`` to change the inventory, ``operate`` to start or cancel a move
or configure HA.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from hvweb.inventory import access


class TeamRole(BasePermission):
    message = "This needs another role in the object's team."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return True
        action = view.required_action()
        self.message = role_message(action)
        # On one object the object check decides; creating needs the role
        # somewhere (the serializer checks the new row's own team).
        return view.detail or access.has_role_anywhere(user, action)

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        action = view.required_action()
        self.message = role_message(action)
        return access.may(request.user, action, obj)


def role_message(action: str) -> str:
    roles = {
        "view": "a role",
        "operate": "the operator or administrator role",
        "administer": "the administrator role",
    }[action]
    return f"This needs {roles} in the object's team."
