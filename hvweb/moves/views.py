"""Pages to start, watch, cancel and look back on moves."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hvweb.inventory import access
from hvweb.inventory.models import Host, VirtualMachine

from .models import Migration
from .services import CancelRefused, MigrationRefused, cancel_migration, start_migration


@login_required
@require_POST
def migrate_vm(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a move of the VM to the posted destination (operators)."""
    vm = access.get_visible_or_404(
        VirtualMachine.objects.select_related("host__cluster"), request.user, pk=pk
    )
    if not access.may(request.user, "operate", vm):
        raise PermissionDenied(
            "Starting a live migration needs the operator or administrator role in "
            "this cluster's team."
        )
    destination = (
        access.restrict(Host.objects.all(), request.user)
        .filter(pk=request.POST.get("destination") or None)
        .first()
    )
    if destination is None:
        messages.error(request, "destination: choose a host of this VM's cluster.")
        return redirect(vm)
    options = {
        name: request.POST[name]
        for name in ("performance_option", "downtime_limit_ms", "speed")
        if request.POST.get(name, "") != ""
    }
    try:
        migration = start_migration(vm, destination, request.user, **options)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
        return redirect(vm)
    except MigrationRefused as exc:
        for failure in exc.failures:
            messages.error(request, f"{failure.code}: {failure.message}")
        return redirect(vm)
    return redirect(migration)


@login_required
def migration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    migration = access.get_visible_or_404(
        Migration.objects.select_related(
            "vm", "cluster", "source", "destination", "requested_by"
        ),
        request.user,
        pk=pk,
    )
    return render(
        request,
        "moves/migration_detail.html",
        {
            "migration": migration,
            "stages": migration.stages.all(),
            "passes": migration.passes_done.all(),
            "may_operate": access.may(request.user, "operate", migration),
        },
    )


@login_required
@require_POST
def migration_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    migration = access.get_visible_or_404(Migration.objects.all(), request.user, pk=pk)
    if not access.may(request.user, "operate", migration):
        raise PermissionDenied(
            "Cancelling a live migration needs the operator or administrator role."
        )
    try:
        cancel_migration(migration, request.user)
    except CancelRefused as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
    return redirect(migration)


@login_required
def migration_list(request: HttpRequest) -> HttpResponse:
    migrations = access.restrict(
        Migration.objects.select_related("vm", "cluster", "source", "destination"),
        request.user,
    )[:200]
    return render(request, "moves/migration_list.html", {"migrations": migrations})
