"""``POST /api/imports/``: import a Hyper-V cluster export into a team.

The file is the request's body (``application/octet-stream`` or
``application/json``, UTF-8 or UTF-16 as PowerShell wrote it) or its
``file`` part (``multipart/form-data``); the options are query parameters.
``?dry_run=true`` answers what would change and changes nothing. The answer
is the same document ``manage.py import_hyperv --json`` prints; a refusal
(400) lists every problem with its path in the file and its rule.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from hvweb.inventory import access
from hvweb.inventory.choices import StorageKind, WorkloadProfile
from hvweb.inventory.importers.apply import run_import
from hvweb.inventory.importers.document import (
    MAX_IMPORT_BYTES,
    ImportRefused,
    too_large,
)
from hvweb.inventory.importers.plan import ImportOptions
from hvweb.inventory.models import Team

from .errors import validation_detail


class _RawFile(BaseParser):
    """Leaves a non-multipart body alone: the view reads its bytes itself."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


class _Multipart(BaseParser):
    media_type = "multipart/form-data"

    def parse(self, stream, media_type=None, parser_context=None):  # pragma: no cover
        return {}


def _flag(request, name: str) -> bool:
    values = request.query_params.getlist(name)
    if not values:
        return False
    if values in (["true"], ["false"]):
        return values == ["true"]
    raise ValidationError({name: ["Give true or false, once."]})


_Refusal = inline_serializer(
    "ImportRefusal",
    {
        "detail": serializers.CharField(),
        "problems": inline_serializer(
            "ImportProblem",
            {
                "path": serializers.CharField(
                    help_text="Where in the file, e.g. nodes[2].vms[5].State"
                ),
                "rule": serializers.CharField(),
                "message": serializers.CharField(),
            },
            many=True,
        ),
        "more": serializers.IntegerField(),
    },
)
_Result = inline_serializer(
    "ImportResult",
    {
        "dry_run": serializers.BooleanField(),
        "applied": serializers.BooleanField(),
        "file": serializers.DictField(),
        "cluster_id": serializers.IntegerField(allow_null=True),
        "team": serializers.DictField(),
        "cluster": serializers.DictField(),
        "summary": serializers.DictField(),
        "changes_anything": serializers.BooleanField(),
        "items": serializers.ListField(child=serializers.DictField()),
        "notes": serializers.ListField(child=serializers.CharField()),
        "active_moves": serializers.IntegerField(),
        "options": serializers.DictField(),
        "fingerprint": serializers.CharField(),
    },
)
_Detail = inline_serializer("ImportDetail", {"detail": serializers.CharField()})
_REFUSED = (
    "The file was refused and nothing changed: each problem has its path in the "
    "file, its rule and a message (or a query parameter is invalid)."
)
_CONFLICT = (
    "The file is another team's cluster, or live migrations are in flight in it."
)
_TOO_LARGE = "The file is larger than an export can be (32 MiB)."


def refusal_body(refused: ImportRefused) -> dict:
    return {
        "detail": "The file was not imported; nothing was changed.",
        "problems": [p.as_dict() for p in refused.problems],
        "more": refused.more,
    }


class ImportView(APIView):
    """Import (or dry-run) a cluster export."""

    permission_classes = [IsAuthenticated]
    parser_classes = [_Multipart, _RawFile]

    @extend_schema(
        operation_id="imports_create",
        parameters=[
            OpenApiParameter(
                "team",
                OpenApiTypes.INT,
                required=True,
                description="The team that owns the cluster (its id).",
            ),
            OpenApiParameter(
                "dry_run",
                OpenApiTypes.BOOL,
                description="Say what would change; change nothing.",
            ),
            OpenApiParameter(
                "remove_missing",
                OpenApiTypes.BOOL,
                description="Remove VMs no longer in the cluster.",
            ),
            OpenApiParameter(
                "workload_profile",
                OpenApiTypes.STR,
                enum=WorkloadProfile.values,
                description="Profile assumed for new VMs (web).",
            ),
            OpenApiParameter(
                "storage_kind",
                OpenApiTypes.STR,
                enum=StorageKind.values,
                description="The SAN when the file does not say.",
            ),
        ],  # fmt: skip
        # A multipart/form-data body with the file as its "file" part is
        # accepted too (curl -F file=@export.json), and left out of the schema:
        # the server refuses a malformed multipart body before any view runs,
        # with an empty 400 the schema could not describe.
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={
            200: _Result,
            201: _Result,
            # A refused file: {"detail", "problems": [{"path", "rule",
            # "message"}], "more"}; a bad query parameter: {name: [rule]}.
            400: OpenApiResponse(OpenApiTypes.OBJECT, description=_REFUSED),
            403: _Detail,
            404: _Detail,
            409: OpenApiResponse(_Refusal, description=_CONFLICT),
            413: OpenApiResponse(_Refusal, description=_TOO_LARGE),
        },
    )
    def post(self, request):
        """Import the export in the body into ``team`` (or, with
        ``dry_run=true``, say what that would change).

        201 when a cluster was created, 200 otherwise; 400 lists every problem
        of the file (path in the file, rule, message); 409 when the file is
        another team's cluster or moves are in flight in it; 413 when the file
        is larger than an export can be.
        """
        options = self._options(request)
        team_id = request.query_params.get("team", "")
        if not team_id.isdigit():
            raise ValidationError({"team": ["Give the team's id."]})
        team = (
            access.restrict(Team.objects.all(), request.user).filter(pk=team_id).first()
        )
        if team is None:
            raise NotFound("No such team.")
        if not access.may(request.user, "administer", team):
            raise PermissionDenied(
                "Importing a cluster needs the administrator role in the team."
            )
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > MAX_IMPORT_BYTES + 64 * 1024:
            return Response(refusal_body(too_large(int(length))), status=413)
        try:
            data, name = self._body(request)
            result = run_import(
                data, team=team, user=request.user, options=options,
                dry_run=_flag(request, "dry_run"), file_name=name,
            )  # fmt: skip
        except ImportRefused as refused:
            rules = {p.rule for p in refused.problems}
            code = (
                413
                if rules == {"size"}
                else 409
                if rules & {"conflict", "busy"}
                else 400
            )
            return Response(refusal_body(refused), status=code)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        created = result.applied and result.plan.cluster.status == "created"
        return Response(
            result.as_dict(), status=status.HTTP_201_CREATED if created else 200
        )

    def _options(self, request) -> ImportOptions:
        params = request.query_params
        try:
            return ImportOptions(
                remove_missing=_flag(request, "remove_missing"),
                workload_profile=params.get("workload_profile", WorkloadProfile.WEB),
                storage_kind=params.get("storage_kind") or None,
            )
        except DjangoValidationError as exc:
            raise ValidationError(validation_detail(exc)) from None

    def _body(self, request) -> tuple[bytes, str]:
        if request.content_type.startswith("multipart/form-data"):
            upload = request._request.FILES.get("file")
            if upload is None:
                raise ImportRefused.one(
                    "file", "required", "send the export as the 'file' part"
                )
            if upload.size > MAX_IMPORT_BYTES:
                raise too_large(upload.size)
            return upload.read(), upload.name
        data = request._request.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            raise too_large(len(data))
        return data, request.query_params.get("name", "")[:255] or "upload.json"
