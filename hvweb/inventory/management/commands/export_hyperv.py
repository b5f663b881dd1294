"""``manage.py export_hyperv CLUSTER``: a stored cluster in the import format."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from hvweb.inventory.importers import psjson
from hvweb.inventory.importers.export import export_cluster
from hvweb.inventory.lookup import LookupError_, find_cluster
from hvweb.inventory.models import Cluster

STYLES = {
    # style: (layout, encoding) - what each PowerShell writes by default
    "ps7": ("ps7", "utf-8"),
    "ps51": ("ps51", "utf-16"),
}


class Command(BaseCommand):
    help = (
        "Write a cluster as scripts/export-hyperv.ps1 writes a real one, for "
        "import_hyperv (the round trip) or to try the importer."
    )

    def add_arguments(self, parser):
        parser.add_argument("cluster", help="the cluster: NAME, TEAM/NAME or id:N")
        parser.add_argument(
            "-o", "--output", help="write to this file (default: stdout)"
        )
        parser.add_argument(
            "--style", choices=sorted(STYLES), default="ps7",
            help="ps7: PowerShell 7's layout, UTF-8 (default); ps51: Windows "
            "PowerShell 5.1's layout, UTF-16 LE with a byte-order mark",
        )  # fmt: skip

    def handle(self, *args, **o):
        try:
            cluster = find_cluster(Cluster.objects.select_related("team"), o["cluster"])
        except LookupError_ as exc:
            raise CommandError(f"cluster: {exc}") from None
        layout, encoding = STYLES[o["style"]]
        document = export_cluster(cluster, now=timezone.now())
        data = psjson.encode(psjson.dumps(document, layout), encoding)
        if o["output"]:
            with open(o["output"], "wb") as f:
                f.write(data)
            self.stderr.write(
                f"{cluster.name}: {len(document['nodes'])} hosts, "
                f"{sum(len(n['vms']) for n in document['nodes'])} VMs -> {o['output']}"
            )
        else:
            sys.stdout.buffer.write(data)
