"""Where `fraud_model` trains: in its own process, or on a dask.distributed cluster.

The local profile trains in the step's process (XGBoost on one float32 block, as always). When the profile names a
scheduler (`PLATFORM_DASK_SCHEDULER`, e.g. `tcp://dask-scheduler:8786`), the step connects a client to it and
trains with `xgboost.dask`: the workers read the snapshot's parquet in partitions, so the training set never has
to fit in the step's own process. The workers run our image (they import `platform_assets` for the per-partition
functions) and read the shared store with their own AWS variables: no credential travels in the task graph.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
from pydantic import Field

IN_PROCESS = "in-process"
DASK = "dask"


def display_address(address: str) -> str:
    """The scheduler address as it may be shown in metadata and MLflow tags: any `user:password@` is dropped
    (a Dask address has none, but a mistyped URL must not put a secret into a run's record)."""
    parts = urlsplit(address)
    if not parts.netloc or "@" not in parts.netloc:
        return address
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class TrainingCluster(dg.ConfigurableResource):
    scheduler: str = Field(
        default="", description="dask.distributed scheduler address (tcp://host:8786); empty: train in-process"
    )
    connect_timeout_seconds: float = Field(default=30.0, description="How long to wait for the scheduler")
    min_workers: int = Field(default=1, description="Workers to wait for before training starts")

    @property
    def trainer(self) -> str:
        return DASK if self.scheduler else IN_PROCESS

    @contextmanager
    def client(self) -> Iterator[object | None]:
        """A `distributed.Client` on the scheduler (closed on exit; the cluster keeps running), or None when
        training runs in-process. Waits for `min_workers` so a cluster that is still starting is not mistaken
        for one without workers."""
        if not self.scheduler:
            yield None
            return
        from distributed import Client

        with Client(self.scheduler, timeout=self.connect_timeout_seconds, set_as_default=False) as client:
            client.wait_for_workers(self.min_workers, timeout=self.connect_timeout_seconds)
            yield client


def describe(client) -> dict[str, object]:
    """Which trainer ran, for MLflow tags and asset metadata: the scheduler (without credentials), its workers and
    threads; `{"trainer": "in-process"}` without a client."""
    if client is None:
        return {"trainer": IN_PROCESS}
    workers = client.scheduler_info(n_workers=-1)["workers"]  # -1: all of them, not the first 5
    return {
        "trainer": DASK,
        "dask_scheduler": display_address(str(client.scheduler.address)),
        "dask_workers": len(workers),
        "dask_threads": sum(int(w.get("nthreads", 0)) for w in workers.values()),
    }

