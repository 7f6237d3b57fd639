"""The image's HEALTHCHECK: the webserver answers, or, in a container started with `serve`, the scoring service,
or, started with `evidently`, the Evidently UI."""

import os
import tempfile
import urllib.request

marker = os.path.join(tempfile.gettempdir(), "platform-{}")
if os.path.exists(marker.format("serve")):
    url = f"http://127.0.0.1:{os.environ.get('PLATFORM_SERVING_PORT', '8000')}/healthz"
elif os.path.exists(marker.format("evidently")):
    url = f"http://127.0.0.1:{os.environ.get('PLATFORM_EVIDENTLY_PORT', '8001')}/"
else:
    url = f"http://127.0.0.1:{os.environ.get('PLATFORM_WEBSERVER_PORT', '3000')}/server_info"
urllib.request.urlopen(url, timeout=4)
