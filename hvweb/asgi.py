"""ASGI entry point: HTTP through Django, websockets through Channels.

Websockets pass the origin check (the site's own origin, port included; see
``hvweb.core.wsorigin``) and session authentication before any consumer sees them.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hvweb.settings")
# Django must be set up before anything imports models (consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from hvweb.core import gctune  # noqa: E402
from hvweb.core.wsorigin import SameOriginValidator  # noqa: E402
from hvweb.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Everything is imported: what start-up built is kept out of the collector's
# scans, and the collector runs less often (pages build many objects).
gctune.tune()
