"""The three roles, as Django groups, and the checks that enforce them server-side.

viewer: sees everything; operator: also acknowledges/mutes alerts and runs reports;
admin: also edits obligations, venues and credentials (and reaches Django's admin).
A superuser is an admin.
"""
from functools import wraps

from django.core.exceptions import PermissionDenied

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def role_of(user) -> str | None:
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in reversed(ROLES):
        if role in names:
            return role
    return None


def has_role(user, role: str) -> bool:
    current = role_of(user)
    return current is not None and _RANK[current] >= _RANK[role]


def role_required(role: str):
    """View decorator: 403 unless the logged-in user holds `role` or a higher one."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        wrapped.required_role = role  # read by the URL sweep test
        return wrapped

    return decorator
