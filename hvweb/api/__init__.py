"""The REST API under ``/api/``: the inventory, readiness and live migrations.

Every view reads through ``Model.objects.restrict(user)``: another team's
object is a 404. Writes go through the models' ``full_clean()`` (see
``serializers.ValidatedModelSerializer``), so a refused change names the rule.
"""
