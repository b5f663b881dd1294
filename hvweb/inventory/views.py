"""The first pages: clusters, a cluster, a host, a VM with its readiness matrix.

Every lookup goes through ``access.restrict``: another team's object is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from migrator import rules

from . import access, snapshots
from .actions import configure_highly_available
from .models import Cluster, Host, VirtualMachine, memory_held_mib


def _host_rows(hosts):
    return [
        {
            "host": host,
            "vms": list(host.virtual_machines.all()),
            "memory_in_use_mib": (used := memory_held_mib(host.virtual_machines.all())),
            "memory_percent": round(100 * used / host.memory_mib)
            if host.memory_mib
            else 0,
        }
        for host in hosts
    ]


@login_required
def cluster_list(request: HttpRequest) -> HttpResponse:
    clusters = (
        access.restrict(Cluster.objects.all(), request.user)
        .select_related("team")
        .annotate(
            host_count=Count("hosts", distinct=True),
            vm_count=Count("hosts__virtual_machines", distinct=True),
        )
    )
    return render(request, "inventory/cluster_list.html", {"clusters": clusters})


@login_required
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = access.get_visible_or_404(
        Cluster.objects.select_related("team"), request.user, pk=pk
    )
    hosts = cluster.hosts.prefetch_related("virtual_machines").order_by("name")
    return render(
        request,
        "inventory/cluster_detail.html",
        {
            "cluster": cluster,
            "host_rows": _host_rows(hosts),
            "csvs": cluster.csvs.select_related("owner"),
        },
    )


@login_required
def host_detail(request: HttpRequest, pk: int) -> HttpResponse:
    host = access.get_visible_or_404(
        Host.objects.select_related("cluster__team").prefetch_related(
            "virtual_machines"
        ),
        request.user,
        pk=pk,
    )
    (row,) = _host_rows([host])
    return render(request, "inventory/host_detail.html", {"host": host, "row": row})


@login_required
def vm_detail(request: HttpRequest, pk: int) -> HttpResponse:
    vm = access.get_visible_or_404(
        VirtualMachine.objects.select_related("host__cluster__team"),
        request.user,
        pk=pk,
    )
    results = snapshots.readiness([vm])
    matrix = [
        {
            "rule": rule,
            "cells": [(r.destination, r.failure(rule.code)) for r in results],
        }
        for rule in rules.RULES
    ]
    return render(
        request,
        "inventory/vm_detail.html",
        {
            "vm": vm,
            "results": results,
            "matrix": matrix,
            "ready_hosts": sum(r.ok for r in results),
            "disks": vm.disks.select_related("csv"),
            "adapters": vm.adapters.all(),
            "may_operate": access.may(request.user, "operate", vm),
        },
    )


@login_required
@require_POST
def vm_configure_ha(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Configure as highly available" for one VM (operators and administrators)."""
    vm = access.get_visible_or_404(VirtualMachine.objects.all(), request.user, pk=pk)
    if not access.may(request.user, "operate", vm):
        raise PermissionDenied(
            "Configuring HA needs the operator or administrator role in this "
            "cluster's team."
        )
    (outcome,) = configure_highly_available([vm])
    level = messages.ERROR if outcome.failures else messages.SUCCESS
    messages.add_message(request, level, str(outcome))
    return redirect(vm)
