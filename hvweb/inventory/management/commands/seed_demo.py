"""``manage.py seed_demo``: create the demo inventory and users, once."""

from hvweb.audit.context import AuditedCommand
from hvweb.inventory import demo


class Command(AuditedCommand):
    help = (
        "Create the demo team, users and clusters (CLU-PROD, CLU-LAB) when missing, "
        "and print the demo logins. Safe to run on every start."
    )

    def handle(self, *args, **options):
        demo.seed(write=self.stdout.write)
