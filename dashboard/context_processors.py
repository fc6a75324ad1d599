from .roles import ADMIN, OPERATOR, has_role, role_of


def roles(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"role": role_of(user), "is_operator": has_role(user, OPERATOR), "is_admin": has_role(user, ADMIN)}
