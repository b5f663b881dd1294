"""The inventory's pages: the clusters overview, a cluster, a host, a VM.

Every lookup is restricted to the user's teams (``Model.objects.restrict``,
``access.get_visible_or_404``): another team's object is a 404.
The overview and the cluster page draw each cluster as a "board" (hosts side by
side, their VMs, memory against capacity, moves in flight) in the same shape the
``/ws/clusters/<id>/`` snapshot has, so ``static/js/clusters.js`` can keep it live.
"""

from __future__ import annotations

from html import escape  # Django's own escape is this, behind a lazy-text wrapper

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from hvweb.core.urls import url_maker
from hvweb.moves import capacity
from migrator import rules

from . import access, snapshots
from .actions import configure_highly_available
from .models import Cluster, Host, VirtualMachine


def _vm_items(vms, moving: set[int]) -> SafeString:
    """The ``<li>`` of each VM of a host card (``_board.html``), drawn here:
    a thousand VMs through the template's loop were most of the overview's
    time. ``static/js/clusters.js`` (``renderHost``) draws the same markup."""
    if not vms:
        return mark_safe('<li class="muted">No VMs.</li>')
    items = []
    url = url_maker("inventory:vm")  # what VirtualMachine.get_absolute_url gives
    for vm in vms:
        moves = " moving" if vm.pk in moving else ""
        state = (
            ""
            if vm.power_state == "running"
            else f" · {escape(vm.get_power_state_display().lower())}"
        )
        items.append(
            f'<li data-vm="{vm.pk}" class="vm power-{escape(vm.power_state)}{moves}">'
            f'<a href="{escape(url(vm.pk))}">{escape(vm.name)}</a> '
            f'<span class="muted">{vm.memory_mib} MiB{state}</span></li>'
        )
    return mark_safe("\n      ".join(items))  # each value escaped above


def _intake_lines(intake: capacity.Intake | None) -> str:
    """Whether a host card's host can take VMs now, and which rule stops it."""
    if intake is None:
        return (
            '<p class="takes muted" data-takes="none">'
            "No VM elsewhere in its cluster to take.</p>"
        )
    if intake.can_take:
        return (
            '<p class="takes yes" data-takes="yes">'
            f"Can take VMs ({intake.takes} of {intake.asked} elsewhere)</p>"
        )
    codes = intake.codes
    named = ", ".join(f'<code class="rule-code">{escape(c)}</code>' for c in codes[:2])
    more = " and more" if len(codes) > 2 else ""
    why = (
        f'<p class="takes-why muted small">{escape(intake.stops[0].message)}</p>'
        if intake.stops
        else ""
    )
    return (
        f'<p class="takes no" data-takes="no">Takes no VM now: {named}{more}</p>{why}'
    )


def _host_card(row: dict, url) -> SafeString:
    """One host's card on a board (``_board.html``), drawn here for the reason
    :func:`_vm_items` is: 64 cards through the template were a third of the
    overview's time. ``static/js/clusters.js`` (``renderHost``) keeps it live."""
    host = row["host"]
    pk, name = host.pk, escape(host.name)
    used, reserved, total = (
        row["memory_in_use_mib"], row["memory_reserved_mib"], host.memory_mib,
    )  # fmt: skip
    held = f"+ {reserved} MiB reserved" if reserved else ""
    return mark_safe(  # every value escaped or a number
        f'<article class="host-col" id="host-{pk}" data-host="{pk}" '
        f'aria-labelledby="host-{pk}-name">\n'
        f'      <h3 id="host-{pk}-name"><a href="{escape(url(pk))}">{name}</a>\n'
        f'        <span class="tag state-{escape(host.state)}">'
        f"{escape(host.get_state_display())}</span></h3>\n"
        f"      {_intake_lines(row['intake'])}\n"
        f'      <p class="mem"><strong class="memory-in-use" data-memory>{used} of '
        f"{total} MiB</strong>\n"
        f'        <span class="muted" data-reserved>{held}</span></p>\n'
        f'      <div class="meter" data-meter role="img" aria-label="'
        f'{row["memory_percent"]} % of memory in use" data-used="{used}" '
        f'data-reserved="{reserved}" data-total="{total}"><span class="used"></span>'
        '<span class="reserved"></span></div>\n'
        f'      <ul class="vms" data-vms aria-label="VMs on {name}">\n'
        f"      {row['vm_items']}\n"
        "      </ul>\n"
        "    </article>"
    )


def _host_rows(
    load: capacity.ClusterCapacity, moves, intake: dict | None = None
) -> list[dict]:
    """Per host of ``load``: its VMs, memory held, memory reserved by moves
    still coming (the rules are ``hvweb.moves.capacity``'s); ``moves`` are the
    moves in flight the page lists, whose VMs are marked as moving; ``intake``
    (:func:`hvweb.moves.capacity.intake`) says whether each host can take VMs
    now and which rule stops it."""
    moving = {m.vm_id for m in moves}
    intake = intake or {}
    url = url_maker("inventory:host")  # what Host.get_absolute_url gives
    rows = []
    for host in load.hosts.values():
        used = load.loads[host.pk].used_mib
        reserved = load.loads[host.pk].reserved_mib
        vms = list(host.virtual_machines.all())
        row = {
            "host": host,
            "vms": vms,
            "vm_items": _vm_items(vms, moving),
            "memory_in_use_mib": used,
            "memory_reserved_mib": reserved,
            "memory_percent": round(100 * used / host.memory_mib)
            if host.memory_mib
            else 0,
            "reserved_percent": min(
                100 - round(100 * used / host.memory_mib),
                round(100 * reserved / host.memory_mib),
            )
            if host.memory_mib
            else 0,
            "free_mib": host.memory_mib - used - reserved,
            "moving_vm_ids": moving,
            "intake": intake.get(host.pk),
        }
        row["card"] = _host_card(row, url)
        rows.append(row)
    return rows


def _boards(clusters):
    """Each cluster with its host rows and moves in flight, in few queries."""
    clusters = list(clusters)
    loads = capacity.load_many(clusters)
    intake = {}
    for load in loads.values():
        intake.update(capacity.intake(load))
    return [
        {
            "cluster": cluster,
            "host_rows": _host_rows(loads[cluster.pk], loads[cluster.pk].moves, intake),
            "moves": loads[cluster.pk].moves,
        }
        for cluster in clusters
    ]


@login_required
def cluster_list(request: HttpRequest) -> HttpResponse:
    """The clusters overview: every visible cluster's hosts side by side, live."""
    clusters = list(
        Cluster.objects.restrict(request.user)
        .select_related("team")
        .annotate(
            host_count=Count("hosts", distinct=True),
            vm_count=Count("hosts__virtual_machines", distinct=True),
        )
    )
    return render(
        request,
        "inventory/cluster_list.html",
        {
            "clusters": clusters,
            "boards": _boards(clusters),
        },
    )


@login_required
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = access.get_visible_or_404(
        Cluster.objects.select_related("team"), request.user, pk=pk
    )
    (board,) = _boards([cluster])
    return render(
        request,
        "inventory/cluster_detail.html",
        {
            "cluster": cluster,
            "board": board,
            "host_rows": board["host_rows"],
            "csvs": cluster.csvs.select_related("owner"),
        },
    )


@login_required
def host_detail(request: HttpRequest, pk: int) -> HttpResponse:
    host = access.get_visible_or_404(
        Host.objects.select_related("cluster__team"), request.user, pk=pk
    )
    load = capacity.load(host.cluster, only=[host.pk])
    moves = sorted(load.moves, key=lambda m: (m.created_at, m.pk))  # from and to it
    (row,) = _host_rows(load, moves)
    context = {
        "host": host,
        "row": row,
        "moves": moves,
        "may_operate": access.may(request.user, "operate", host),
    }
    return render(request, "inventory/host_detail.html", context)


@login_required
def vm_detail(request: HttpRequest, pk: int) -> HttpResponse:
    from hvweb.moves.views import advice_context, move_form_context

    vm = access.get_visible_or_404(
        VirtualMachine.objects.select_related("host__cluster__team"),
        request.user,
        pk=pk,
    )
    results = snapshots.readiness([vm])
    # What fails alike for every host is the VM's own (or its source's): said
    # once above the matrix, not once per host.
    vm_failures = capacity.common_failures(r.failures for r in results)
    shared_codes = {f.code for f in vm_failures}
    matrix = [
        {
            "rule": rule,
            "cells": [(r.destination, r.failure(rule.code)) for r in results],
            "shared": rule.code in shared_codes,
        }
        for rule in rules.RULES
    ]
    may_operate = access.may(request.user, "operate", vm)
    context = {
        "vm": vm,
        "results": results,
        "matrix": matrix,
        "vm_failures": vm_failures,
        "ready_hosts": sum(r.ok for r in results),
        "disks": vm.disks.select_related("csv"),
        "adapters": vm.adapters.all(),
        "may_operate": may_operate,
    }
    context.update(move_form_context(request, vm, may_operate))
    # What stops every destination: the rules said above the matrix are only
    # named in the move form; the others (a move already under way, the VM
    # not running) are said there in full.
    shared = context.get("shared_failures", ())
    context["shared_below"] = [f for f in shared if f.code in shared_codes]
    context["shared_here"] = [f for f in shared if f.code not in shared_codes]
    context.update(advice_context(vm, context.get("destinations")))
    return render(request, "inventory/vm_detail.html", context)


@login_required
@require_POST
def vm_configure_ha(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Configure as highly available" for one VM (operators and administrators)."""
    vm = access.get_to_act_on(
        VirtualMachine.objects.all(),
        request.user,
        "operate",
        "Configuring HA needs the operator or administrator role in this "
        "cluster's team.",
        pk=pk,
    )
    (outcome,) = configure_highly_available([vm])
    level = messages.ERROR if outcome.failures else messages.SUCCESS
    # Tagged so the page shows it next to the button, not at the top.
    messages.add_message(request, level, str(outcome), extra_tags="at-configure-ha")
    return redirect(vm)
