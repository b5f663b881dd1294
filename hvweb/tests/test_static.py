"""Static files as the console serves them: hashed names, gzip, a long cache.

The suite itself serves static files from the finders (``settings_test``);
this test collects them with the console's own storage (WhiteNoise's
``CompressedManifestStaticFilesStorage``) into a folder of its own and asks
for Plotly.js the way Chromium does.
"""

from __future__ import annotations

import gzip

import pytest
from django.conf import settings
from django.templatetags.static import static
from django.test import Client, override_settings

from hvweb.core.collect import FINGERPRINT, collect_if_changed

CONSOLE_STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "hvweb.core.storage.ConsoleStaticFilesStorage"},
}


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    root = tmp_path_factory.mktemp("collected") / "static"
    with override_settings(
        STATIC_ROOT=root,
        STORAGES=CONSOLE_STORAGES,
        WHITENOISE_USE_FINDERS=False,
        WHITENOISE_AUTOREFRESH=False,
        WHITENOISE_KEEP_ONLY_HASHED_FILES=True,
    ):
        assert collect_if_changed() is True
        yield root


def test_plotly_is_served_gzipped_under_a_hashed_name_cached_for_ten_years(collected):
    url = static("vendor/plotly.min.js")
    assert url.startswith("/static/vendor/plotly.min.") and url != (
        "/static/vendor/plotly.min.js"
    )  # the content's hash is in the name
    response = Client().get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    cache = response["Cache-Control"]
    assert "max-age=315360000" in cache and "immutable" in cache
    body = b"".join(response.streaming_content)
    plain = gzip.decompress(body)
    assert len(plain) > 4_000_000 and len(body) < 0.35 * len(plain)
    # A client that does not accept gzip gets the plain file.
    plain_response = Client().get(url)
    assert "Content-Encoding" not in plain_response
    # Only hashed copies are kept.
    assert not (collected / "vendor" / "plotly.min.js").exists()


def test_collecting_again_is_skipped_until_a_source_changes(collected):
    assert (collected / FINGERPRINT).exists()
    assert collect_if_changed() is False


def test_a_page_renders_with_plain_names_while_nothing_is_collected(tmp_path):
    with override_settings(
        STATIC_ROOT=tmp_path / "empty", STORAGES=CONSOLE_STORAGES,
        WHITENOISE_USE_FINDERS=False,
    ):  # fmt: skip
        assert static("css/hvweb.css") == "/static/css/hvweb.css"


def test_a_file_missing_from_a_collected_manifest_is_still_an_error(collected):
    with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
        static("css/no-such-file.css")
