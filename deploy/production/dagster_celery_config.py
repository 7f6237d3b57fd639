"""Configuration of the production Celery workers, read by `dagster_celery.app` when this folder is on PYTHONPATH.

Start a worker from the repository root, with the production environment set (docs/production.md):

    PYTHONPATH=deploy/production celery -A dagster_celery.app worker --loglevel=INFO --concurrency=2

The broker and result-backend URLs may carry a password: they are read from the environment here, exactly as the
executor reads them (`build_executor` in platform_assets/definitions.py), and never written to a file. The other
settings (Redis key prefix, transport options) come from `Settings.celery_config()`, as the executor's do, so
workers and runs always meet on the same queues.
"""

import os

from platform_assets.settings import load_settings

_REQUIRED = ("PLATFORM_CELERY_BROKER_URL", "PLATFORM_CELERY_BACKEND_URL")
_missing = [name for name in _REQUIRED if not os.environ.get(name)]
if _missing:
    raise RuntimeError(f"The Celery worker needs {_missing} in its environment (see docs/production.md)")

broker_url = os.environ["PLATFORM_CELERY_BROKER_URL"]
result_backend = os.environ["PLATFORM_CELERY_BACKEND_URL"]
globals().update(load_settings().celery_config())
