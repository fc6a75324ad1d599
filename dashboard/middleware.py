from django.conf import settings
from django.contrib.auth.views import redirect_to_login

# Paths reachable without a session: the login page itself, static assets, and the health
# check (monitoring probes have no session; it reveals only up/down per dependency).
PUBLIC_PREFIXES = ("/login/", "/healthz", "/" + settings.STATIC_URL.lstrip("/"))


class LoginRequiredEverywhere:
    """Every page needs a logged-in user, including any added later (deny by default)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated and not request.path.startswith(PUBLIC_PREFIXES):
            if request.path.startswith("/api/"):
                from django.http import JsonResponse

                return JsonResponse({"error": "authentication required"}, status=401)
            return redirect_to_login(request.get_full_path())
        return self.get_response(request)
