"""The webhook pages: a team administrator's endpoints and their deliveries.

Endpoints are looked up among the teams the user administers
(``restrict(user, "administer")``): another team's, or one of a team where
the user is not an administrator, does not exist (404). Listing needs the
administrator role in some team (403 otherwise, with the role it needs).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from hvweb.inventory import access

from .forms import EndpointForm
from .models import Endpoint

ROLE_NEEDED = "Webhooks need the administrator role in a team."
DELIVERIES_SHOWN = 100


def administered(user):
    return Endpoint.objects.restrict(user, "administer").select_related("team")


def _endpoint(request: HttpRequest, pk: int) -> Endpoint:
    found = administered(request.user).filter(pk=pk).first()
    if found is None:
        raise Http404("No such endpoint.")
    return found


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_list(request: HttpRequest) -> HttpResponse:
    if not access.has_role_anywhere(request.user, "administer"):
        raise PermissionDenied(ROLE_NEEDED)
    form = EndpointForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        generated = not form.cleaned_data["secret"]
        endpoint = form.save(commit=False)
        endpoint.created_by = request.user
        endpoint.save()
        if generated:
            messages.success(
                request,
                f"Endpoint registered. Its secret, shown this once: {endpoint.secret}",
            )
        return redirect(endpoint)
    return render(
        request,
        "webhooks/endpoint_list.html",
        {"form": form, "endpoints": administered(request.user)},
        status=400 if form.is_bound else 200,
    )


@login_required
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    return render(
        request,
        "webhooks/endpoint_detail.html",
        {
            "endpoint": endpoint,
            "deliveries": endpoint.deliveries.all()[:DELIVERIES_SHOWN],
        },
    )


@login_required
@require_POST
def endpoint_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    endpoint.delete()
    messages.success(request, f"Endpoint {endpoint.url} deleted; it gets nothing more.")
    return redirect("webhooks:endpoints")
