"""A freshness guard for online feature reads.

Feast's online store returns the newest value it holds however old it is: the feature view TTL only applies to
offline joins (feast#6821). A customer who went quiet 40 days ago would be scored online with figures the
training set would have nulled. `fresh_online_features` reads the values *with* their event timestamps, nulls every
value older than its view's TTL at the caller's time, reports them as stale, and recomputes on-demand features from
the guarded inputs with the view's own code, so that online equals the offline point-in-time vector at that time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

TIMESTAMP_SUFFIX = "__ts"


@dataclass
class GuardedFeatures:
    """Online feature values with every value older than its TTL replaced by None and listed in `stale`."""

    values: dict[str, list]
    stale: dict[str, list[int]] = field(default_factory=dict)  # feature -> indices of the entity rows
    as_of: datetime | None = None

    @property
    def stale_count(self) -> int:
        return sum(len(rows) for rows in self.stale.values())

    def row(self, index: int) -> dict:
        return {name: column[index] for name, column in self.values.items()}


def is_stale(event_seconds: int | None, ttl_seconds: float, now_seconds: float) -> bool:
    """A stored value is stale when its view has a TTL and the value is older than that at `now`. A missing
    value (timestamp 0 or None) is absent, not stale."""
    if not event_seconds or ttl_seconds <= 0:
        return False
    return now_seconds - event_seconds > ttl_seconds


def fresh_online_features(store, feature_service: str, entity_rows: list[dict], now: datetime | None = None):
    """`store.get_online_features(service, entity_rows)` with the TTL applied at `now` (default: wall clock).

    Entity rows carry the join keys and any request fields of the service's on-demand views."""
    import pandas as pd

    now = now or datetime.now(UTC)
    now_seconds = now.timestamp()
    service = store.get_feature_service(feature_service)
    on_demand = {v.name: v for v in store.list_on_demand_feature_views()}
    wanted: list[str] = []
    refs: dict[str, str] = {}  # stored feature name -> view:feature reference
    odfvs = []
    for projection in service.feature_view_projections:
        if projection.name in on_demand:
            odfv = on_demand[projection.name]
            odfvs.append((odfv, [f.name for f in projection.features]))
            wanted += [f.name for f in projection.features]
            for source in odfv.source_feature_view_projections.values():
                refs.update({f.name: f"{source.name}:{f.name}" for f in source.features})
        else:
            wanted += [f.name for f in projection.features]
            refs.update({f.name: f"{projection.name}:{f.name}" for f in projection.features})
    ttl = {}
    for ref in refs.values():
        view = ref.split(":", 1)[0]
        if view not in ttl:
            view_ttl = store.get_feature_view(view).ttl
            ttl[view] = view_ttl.total_seconds() if view_ttl else 0.0
    response = store.get_online_features(features=list(refs.values()), entity_rows=entity_rows).to_dict(
        include_event_timestamps=True
    )
    values: dict[str, list] = {}
    stale: dict[str, list[int]] = defaultdict(list)
    for name, ref in refs.items():
        column = list(response[name])
        for i, seconds in enumerate(response.get(name + TIMESTAMP_SUFFIX, [])):
            if is_stale(seconds, ttl[ref.split(":", 1)[0]], now_seconds):
                column[i] = None
                stale[name].append(i)
        values[name] = column
    # What Feast hands an on-demand view: the join keys and request data of the entity rows, and the features
    entity_columns = {k: [row.get(k) for row in entity_rows] for k in dict.fromkeys(k for row in entity_rows for k in row)}
    for odfv, outputs in odfvs:
        inputs = pd.DataFrame({**entity_columns, **{k: entity_columns.get(k, [None] * len(entity_rows))
                                                    for k in _request_fields(odfv)}, **values})
        computed = odfv.feature_transformation.udf(inputs)
        for name in outputs:
            values[name] = [None if pd.isna(v) else v.item() if hasattr(v, "item") else v for v in computed[name]]
    keys = sorted({k for row in entity_rows for k in row} - set(values))
    result = {k: [row.get(k) for row in entity_rows] for k in keys}
    result.update({name: values[name] for name in wanted})
    return GuardedFeatures(result, {k: v for k, v in stale.items() if k in refs}, now)


def _request_fields(odfv) -> list[str]:
    return [f.name for source in odfv.source_request_sources.values() for f in source.schema]
