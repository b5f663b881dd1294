"""Serializer fields that take JSON types as the schema states them.

DRF's fields coerce: ``"5"`` for an integer, ``0`` for a boolean, ``5`` for a
string, ``2016`` for the choice ``"2016"``. The API documents JSON types, and a
client that sends another type has a bug worth hearing about, so these fields
refuse what the schema does not allow.
"""

from __future__ import annotations

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictChoiceField(serializers.ChoiceField):
    """A choice sent as the type its stored values have: a string for text
    choices, a whole number (not a boolean) for integer ones (a VM's priority)."""

    def to_internal_value(self, data):
        numeric = all(isinstance(key, int) for key in self.choices)
        if isinstance(data, bool) or not isinstance(data, int if numeric else str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)
