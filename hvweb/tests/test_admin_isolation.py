"""The admin shows team B's staff nothing of team A: not in lists, filter sidebars,
form choices or redirects, on every page the admin's URLconf has.

The pages are collected from the admin's URL patterns, so a page added later is
walked too.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, reverse

from hvweb.inventory.admin import visible_rows
from hvweb.inventory.models import Cluster, Membership
from hvweb.inventory.testing import make_host, make_member, make_world
from hvweb.moves.models import Migration
from hvweb.moves.services import start_migration

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("unworked_queue"),
]


def _admin_url_names() -> list[tuple[str, list[str]]]:
    """Every named admin URL pattern, with its parameter names."""
    names = []

    def walk(patterns):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns)
            elif isinstance(p, URLPattern) and p.name:
                names.append((p.name, list(p.pattern.regex.groupindex)))

    walk(admin.site.get_urls())
    return names


def _model_for(name: str):
    for model in admin.site._registry:
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(prefix):
            return model
    return None


@pytest.fixture
def teams():
    alpha = make_world("ALPHA")
    bravo = make_world("BRAVO")
    a_admin = make_member(alpha.team, "administrator", "alpha-admin")
    make_member(alpha.team, "viewer", "alpha-viewer")
    b_admin = make_member(bravo.team, "administrator", "bravo-admin")
    start_migration(alpha.vm, alpha.hosts[1], a_admin, speed=0)
    start_migration(bravo.vm, bravo.hosts[1], b_admin, speed=0)
    # An audit entry of each team: the change of a host.
    for world in (alpha, bravo):
        world.hosts[2].memory_mib = 32768
        world.hosts[2].save()
    return alpha, bravo, b_admin


def _pages(user) -> list[str]:
    """Every admin page reachable without another team's ids, for ``user``."""
    urls = []
    for name, params in _admin_url_names():
        if name in {"logout", "password_change", "password_change_done", "login"}:
            continue
        model = _model_for(name)
        if not params:
            urls.append(reverse(f"admin:{name}"))
        elif params == ["app_label"]:
            for label in {m._meta.app_label for m in admin.site._registry}:
                urls.append(reverse(f"admin:{name}", kwargs={"app_label": label}))
        elif params == ["object_id"] and model is not None:
            own = visible_rows(model, user).order_by("pk").first()
            if own is not None:
                urls.append(reverse(f"admin:{name}", args=[own.pk]))
    return urls


def _leaks(page: str, model, user) -> list[str]:
    """Filter links naming an id the user may not see, and team A's names."""
    found = [w for w in re.findall(r"alpha[\w-]*", page, re.IGNORECASE)]
    for path, pk in re.findall(r"[?&;]([a-z_]+?)__(?:id__)?exact=(\d+)", page):
        if model is None:
            continue
        try:
            field = get_fields_from_path(model, path)[-1]
        except Exception:  # noqa: BLE001 - not a field path
            continue
        related = getattr(field, "related_model", None)
        owned = related is not None and (
            hasattr(related, "team_path") or related is get_user_model()
        )
        if owned and not visible_rows(related, user).filter(pk=pk).exists():
            found.append(f"{path}={pk}")
    return found


def test_every_admin_page_shows_team_b_nothing_of_team_a(client, teams):
    alpha, bravo, b_admin = teams
    client.force_login(b_admin)
    pages = _pages(b_admin)
    names = {name for name, _ in _admin_url_names()}
    # The walk covers every registered model's list (a new admin is walked too).
    for model in admin.site._registry:
        assert f"{model._meta.app_label}_{model._meta.model_name}_changelist" in names
    assert len(pages) > 30
    seen = 0
    for url in pages:
        response = client.get(url)
        assert response.status_code in (200, 302, 403, 404), url
        if response.status_code != 200:
            continue
        seen += 1
        page = response.content.decode()
        leaks = _leaks(page, _model_for(response.resolver_match.url_name), b_admin)
        assert not leaks, (url, leaks)
    assert seen > 20
    # Filtering by team A's ids selects nothing of A.
    host_list = reverse("admin:inventory_host_changelist")
    page = client.get(host_list, {"cluster__id__exact": alpha.cluster.pk})
    assert "ALPHA" not in page.content.decode()


def test_the_host_filter_sidebar_lists_own_clusters_only(client, teams):
    alpha, bravo, b_admin = teams
    # A second cluster of B's: the sidebar shows a filter from two choices on.
    second = Cluster.objects.create(name="CLU-BRAVO-2", team=bravo.team)
    make_host(second, "HV-BRAVO-9")
    client.force_login(b_admin)
    page = client.get(reverse("admin:inventory_host_changelist")).content.decode()
    assert f"cluster__id__exact={bravo.cluster.pk}" in page
    assert f"cluster__id__exact={second.pk}" in page
    assert f"cluster__id__exact={alpha.cluster.pk}" not in page
    assert "CLU-ALPHA" not in page


def test_another_teams_object_and_a_missing_one_answer_alike_on_view_on_site(
    client, teams
):
    alpha, bravo, b_admin = teams
    client.force_login(b_admin)
    ct = ContentType.objects.get_for_model(Migration).pk
    foreign = Migration.objects.get(vm=alpha.vm).pk
    own = Migration.objects.get(vm=bravo.vm).pk
    assert client.get(f"/admin/r/{ct}/{foreign}/").status_code == 404
    assert client.get(f"/admin/r/{ct}/999999/").status_code == 404
    assert client.get(f"/admin/r/{ct}/abc/").status_code == 404
    assert client.get(f"/admin/r/{ct}/{own}/").status_code == 302
    assert client.get(f"/admin/r/99999/{own}/").status_code == 404


def test_the_membership_form_takes_an_exact_user_name_and_lists_no_users(client, teams):
    alpha, bravo, b_admin = teams
    client.force_login(b_admin)
    url = reverse("admin:inventory_membership_add")
    page = client.get(url).content.decode()
    assert "alpha-admin" not in page and "alpha-viewer" not in page
    assert 'name="username"' in page
    refused = client.post(
        url, {"username": "Alpha-Viewer", "team": bravo.team.pk, "role": "viewer"}
    )
    assert refused.status_code == 200
    assert "No user has exactly this user name." in refused.content.decode()
    added = client.post(
        url, {"username": "alpha-viewer", "team": bravo.team.pk, "role": "viewer"}
    )
    assert added.status_code == 302
    assert Membership.objects.filter(
        user__username="alpha-viewer", team=bravo.team
    ).exists()
    again = client.post(
        url, {"username": "alpha-viewer", "team": bravo.team.pk, "role": "operator"}
    )
    assert again.status_code == 200
    assert "already has a role in this team" in again.content.decode()
    # Nor can they put anyone into team A.
    foreign = client.post(
        url, {"username": "bravo-admin", "team": alpha.team.pk, "role": "viewer"}
    )
    assert foreign.status_code == 200
    assert not Membership.objects.filter(user=b_admin, team=alpha.team).exists()


def test_every_admin_page_of_an_object_answers_404_for_another_teams_one(client, teams):
    """Each admin route that takes an object's id (change, history, delete, for
    every team-scoped model and the audit trail), collected from the URLconf:
    team A's object and a missing one answer alike, 404."""
    from auditlog.models import LogEntry

    alpha, bravo, b_admin = teams
    client.force_login(b_admin)
    scoped = {
        model
        for model, model_admin in admin.site._registry.items()
        if hasattr(model, "team_path") or model is LogEntry
    }
    tried = 0
    for name, params in _admin_url_names():
        model = _model_for(name)
        if params != ["object_id"] or model not in scoped:
            continue
        if model is LogEntry:
            foreign = LogEntry.objects.filter(additional_data__team=alpha.team.pk)
        else:
            foreign = model._default_manager.exclude(
                pk__in=visible_rows(model, b_admin)
            )
        obj = foreign.order_by("pk").first()
        assert obj is not None, name
        for object_id in (obj.pk, 987654321):
            response = client.get(reverse(f"admin:{name}", args=[object_id]))
            assert response.status_code == 404, (name, object_id, response.status_code)
        tried += 1
    assert tried >= 3 * len(scoped)
