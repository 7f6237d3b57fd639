"""The image's HEALTHCHECK: the webserver answers, or, in a container started with `serve`, the scoring service."""

import os
import tempfile
import urllib.request

if os.path.exists(os.path.join(tempfile.gettempdir(), "platform-serve")):
    url = f"http://127.0.0.1:{os.environ.get('PLATFORM_SERVING_PORT', '8000')}/healthz"
else:
    url = f"http://127.0.0.1:{os.environ.get('PLATFORM_WEBSERVER_PORT', '3000')}/server_info"
urllib.request.urlopen(url, timeout=4)
