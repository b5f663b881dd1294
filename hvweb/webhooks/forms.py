"""The webhook page's form; the rules are the model's ``clean()``."""

from __future__ import annotations

from django import forms

from hvweb.inventory.models import Team

from .models import EVENTS, Endpoint


class EndpointForm(forms.ModelForm):
    """Register an endpoint in one of the teams the user administers."""

    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=list(EVENTS.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text="The events to send.",
    )
    secret = forms.CharField(
        required=False,
        max_length=128,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs each delivery (16 characters or more); left empty, "
        "one is generated and shown once.",
    )

    class Meta:
        model = Endpoint
        fields = ["team", "url", "events", "secret"]

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.restrict(user, "administer")
        self.fields["team"].empty_label = None
