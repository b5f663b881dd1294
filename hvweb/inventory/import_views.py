"""Pages for bringing in a real cluster and for its readiness report.

* ``/imports/`` - a team administrator uploads an export; the page shows the
  dry run (created, updated, unchanged, no longer present, each field's old
  and new value) with "Apply", which applies that same file
  (``importers.staging``) if the inventory has not changed in between;
* ``/clusters/<id>/readiness/`` (and ``.csv``, ``.json``, ``.ps1``) - the
  readiness report of a cluster, for any member of its team;
* ``/vms/<id>/workload/`` - an operator sets the workload profile an imported
  VM was given as an assumption.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import access
from .choices import StorageKind, WorkloadProfile
from .demo import WORKLOADS
from .importers import staging
from .importers.apply import run_import
from .importers.document import MAX_IMPORT_BYTES, ImportRefused, too_large
from .importers.plan import ImportOptions
from .models import PAGE_SIZE_KIB, Cluster, Team, VirtualMachine
from .readiness_report import build_report


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Export file",
        help_text="What scripts/export-hyperv.ps1 wrote (JSON, UTF-8 or UTF-16).",
    )
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    workload_profile = forms.ChoiceField(
        label="Workload assumed for new VMs",
        choices=WorkloadProfile.choices,
        initial=WorkloadProfile.WEB,
        help_text="Forecasts label it as an assumption until an operator sets it.",
    )
    storage_kind = forms.ChoiceField(
        label="SAN, if the file does not say",
        choices=[("", "keep the cluster's (iSCSI when new)")]
        + [c for c in StorageKind.choices if c[0] != StorageKind.NONE],
        required=False,
    )
    remove_missing = forms.BooleanField(
        label="Remove VMs no longer in the cluster", required=False
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = access.restrict(
            Team.objects.all(), user, "administer"
        )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError(str(too_large(upload.size).problems[0].message))
        return upload

    def options(self) -> ImportOptions:
        d = self.cleaned_data
        return ImportOptions(
            remove_missing=d["remove_missing"],
            workload_profile=d["workload_profile"],
            storage_kind=d["storage_kind"] or None,
        )


def _administrator(request: HttpRequest) -> None:
    if not access.has_role_anywhere(request.user, "administer"):
        raise PermissionDenied(
            "Importing a cluster needs the administrator role in a team."
        )


@login_required
def import_cluster(request: HttpRequest) -> HttpResponse:
    """Upload an export and read its dry run (nothing is written)."""
    _administrator(request)
    form = ImportForm(request.POST or None, request.FILES or None, user=request.user)
    context = {"form": form}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        data = upload.read()
        team = form.cleaned_data["team"]
        try:
            result = run_import(
                data, team=team, user=request.user, options=form.options(),
                dry_run=True, file_name=upload.name,
            )  # fmt: skip
        except ImportRefused as refused:
            context["refused"] = refused
        else:
            context["result"] = result
            context["body"] = result.as_dict()
            context["token"] = staging.stage(
                data, user_id=request.user.pk, team_id=team.pk, file_name=upload.name
            )
    status = 400 if "refused" in context or form.errors else 200
    return render(request, "inventory/import.html", context, status=status)


@login_required
@require_POST
def apply_import(request: HttpRequest) -> HttpResponse:
    """Apply the dry run the page showed, in one transaction."""
    _administrator(request)
    staged = staging.fetch(request.POST.get("token", ""), user_id=request.user.pk)
    if staged is None:
        messages.error(
            request,
            "That dry run is no longer available (an hour has passed, or it was "
            "applied): upload the file again.",
        )
        return redirect("inventory:import")
    data, team_id, name = staged
    team = access.get_visible_or_404(Team.objects.all(), request.user, pk=team_id)
    try:
        options = ImportOptions(
            remove_missing=request.POST.get("remove_missing") == "on",
            workload_profile=request.POST.get("workload_profile", WorkloadProfile.WEB),
            storage_kind=request.POST.get("storage_kind") or None,
        )
        result = run_import(
            data, team=team, user=request.user, options=options, dry_run=False,
            file_name=name, expected_fingerprint=request.POST.get("fingerprint"),
        )  # fmt: skip
    except ImportRefused as refused:
        return render(
            request,
            "inventory/import.html",
            {"form": ImportForm(user=request.user), "refused": refused},
            status=409,
        )
    staging.discard(request.POST["token"])
    summary = result.plan.summary()
    if result.applied:
        messages.success(
            request,
            f"Imported {result.plan.cluster.name} from {name}: "
            + ", ".join(
                f"{kind}s {s['created']} created, {s['updated']} updated"
                for kind, s in summary.items()
            )
            + ".",
        )
    else:
        messages.info(
            request, "Nothing to change: the inventory already matches the file."
        )
    return redirect(result.cluster)


# --- The readiness report ------------------------------------------------------------


def _report(request: HttpRequest, pk: int):
    cluster = access.get_visible_or_404(
        Cluster.objects.select_related("team", "imported_by"), request.user, pk=pk
    )
    return build_report(cluster)


@login_required
@require_GET
def readiness_report(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report(request, pk)
    return render(request, "inventory/readiness_report.html", {"report": report})


def _download(body: str | bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


@login_required
@require_GET
def readiness_report_csv(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report(request, pk)
    return _download(
        report.csv_text(),
        "text/csv; charset=utf-8",
        f"readiness-{_slug(report.cluster.name)}.csv",
    )


@login_required
@require_GET
def readiness_report_json(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report(request, pk)
    return JsonResponse(report.as_dict(), json_dumps_params={"indent": 2})


@login_required
@require_GET
def readiness_report_ps1(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report(request, pk)
    # UTF-8 with a byte-order mark: Windows PowerShell 5.1 reads a .ps1 without
    # one in the ANSI code page (about_Character_Encoding).
    body = b"\xef\xbb\xbf" + report.script().encode("utf-8")
    return _download(
        body, "text/plain; charset=utf-8", f"fix-{_slug(report.cluster.name)}.ps1"
    )


# --- The assumed workload -------------------------------------------------------------


@login_required
@require_POST
def vm_workload(request: HttpRequest, pk: int) -> HttpResponse:
    """Set the VM's workload profile; it is then no longer an assumption."""
    vm = access.get_visible_or_404(VirtualMachine.objects.all(), request.user, pk=pk)
    if not access.may(request.user, "operate", vm):
        raise PermissionDenied(
            "Setting the workload needs the operator or administrator role."
        )
    profile = request.POST.get("workload_profile", "")
    if profile not in WorkloadProfile.values:
        messages.error(
            request,
            f"workload_profile: {profile!r} is not one of "
            f"{', '.join(WorkloadProfile.values)}.",
            extra_tags="at-workload",
        )
        return redirect(vm)
    write_rate, working_set = WORKLOADS[profile]
    vm.workload_profile = profile
    vm.write_rate = write_rate
    vm.working_set_pages = min(working_set, vm.memory_mib * 1024 // PAGE_SIZE_KIB)
    vm.workload_assumed = False
    vm.clean_fields(exclude=["host"])
    vm.save(
        update_fields=["workload_profile", "write_rate", "working_set_pages",
                       "workload_assumed"]
    )  # fmt: skip
    messages.success(
        request,
        f"{vm.name}'s workload is now {vm.get_workload_profile_display()}: "
        f"forecasts use it.",
        extra_tags="at-workload",
    )
    return redirect(vm)
