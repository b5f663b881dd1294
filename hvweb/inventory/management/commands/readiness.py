"""``manage.py readiness``: the seed's rules for every (VM, destination) pair."""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from hvweb.inventory import snapshots
from hvweb.inventory.lookup import LookupError_, find_host, find_vm
from hvweb.inventory.models import Host, VirtualMachine
from hvweb.moves import capacity


class Command(BaseCommand):
    help = (
        "Check each VM against every other host of its cluster with the seed's "
        "live-migration rules."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--vm", help="only this virtual machine: NAME, CLUSTER/NAME or id:N"
        )
        parser.add_argument(
            "--host",
            help="only pairs with this host as source or destination: NAME, "
            "CLUSTER/NAME or id:N",
        )
        parser.add_argument(
            "--json", action="store_true", help="print a JSON list of pairs"
        )
        parser.add_argument(
            "--now",
            action="store_true",
            help="also run the operational checks (host up, free memory, ...) "
            "with the moves under way, as starting a move now would",
        )
        parser.add_argument(
            "--user", help="only what this user's teams may see (default: all)"
        )

    def handle(self, *args, **options):
        vms = VirtualMachine.objects.select_related("host__cluster").order_by(
            "host__cluster__name", "name"
        )
        if options["user"]:
            try:
                user = get_user_model().objects.get(username=options["user"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"no user named {options['user']!r}") from None
            vms = vms.restrict(user, "view")
        host = None
        try:
            if options["vm"]:
                vms = vms.filter(pk=find_vm(vms, options["vm"]).pk)
            if options["host"]:
                hosts = Host.objects.all()
                if options["user"]:
                    hosts = hosts.restrict(user, "view")
                host = find_host(hosts, options["host"])
        except LookupError_ as exc:
            raise CommandError(str(exc)) from None
        if host is not None:
            vms = vms.filter(host__cluster_id=host.cluster_id)
        if options["now"]:
            results = capacity.readiness(vms)
        else:
            results = snapshots.readiness(vms)
        if host is not None:
            results = [r for r in results if host.pk in (r.source.pk, r.destination.pk)]
        if options["json"]:
            self.stdout.write(json.dumps([self._as_dict(r) for r in results], indent=2))
            return
        for r in results:
            head = (
                f"{r.vm.host.cluster.name}  {r.vm.name}: {r.source.name} -> "
                f"{r.destination.name}"
            )
            if r.ok:
                self.stdout.write(f"{head}  OK")
                continue
            self.stdout.write(f"{head}  REFUSED {', '.join(r.codes)}")
            for failure in r.failures:
                self.stdout.write(f"    {failure.code}: {failure.message}")
        ok = sum(r.ok for r in results)
        self.stdout.write(f"{ok} of {len(results)} pairs may live-migrate.")

    @staticmethod
    def _as_dict(result: snapshots.PairResult) -> dict:
        return {
            "cluster": result.vm.host.cluster.name,
            "vm": result.vm.name,
            "source": result.source.name,
            "destination": result.destination.name,
            "ok": result.ok,
            "failures": [
                {"code": f.code, "message": f.message} for f in result.failures
            ],
        }
