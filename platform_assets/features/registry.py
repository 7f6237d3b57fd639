"""Applying the feature repository the way `feast apply` does, but reporting the diff instead of printing it."""

from __future__ import annotations

from collections import defaultdict

from feast import Entity, FeatureService, FeatureView
from feast.data_source import DataSource
from feast.diff.property_diff import TransitionType
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_contents import RepoContents
from feast.repo_operations import extract_objects_for_apply_delete


def repo_contents(objects: list) -> RepoContents:
    return RepoContents(
        projects=[],
        data_sources=[o for o in objects if isinstance(o, DataSource)],
        feature_views=[o for o in objects if isinstance(o, FeatureView)],
        on_demand_feature_views=[o for o in objects if isinstance(o, OnDemandFeatureView)],
        stream_feature_views=[],
        label_views=[],
        entities=[o for o in objects if isinstance(o, Entity)],
        feature_services=[o for o in objects if isinstance(o, FeatureService)],
        permissions=[],
    )


def summarize_diff(registry_diff) -> dict[str, list[str]]:
    """{"added": [...], "changed": [...], "removed": [...], "unchanged": [...]} as "Type:name" strings."""
    labels = {
        TransitionType.CREATE: "added",
        TransitionType.UPDATE: "changed",
        TransitionType.DELETE: "removed",
        TransitionType.UNCHANGED: "unchanged",
    }
    summary: dict[str, list[str]] = defaultdict(list)
    for diff in registry_diff.feast_object_diffs:
        if _internal(diff):
            continue
        kind = labels.get(diff.transition_type, "unknown")
        summary[kind].append(f"{diff.feast_object_type.value}:{diff.name}")
    return {k: sorted(summary.get(k, [])) for k in ("added", "changed", "removed", "unchanged")}


def _internal(diff) -> bool:
    """Feast's own bookkeeping objects (the project record, the `__dummy` entity), not repository objects."""
    return diff.name.startswith("__") or diff.feast_object_type.value.lower() == "project"


def apply_repo(store, objects: list) -> dict[str, list[str]]:
    """Make the registry equal to `objects` (objects no longer defined are removed) and return the diff."""
    repo = repo_contents(objects)
    registry_diff, _, _ = store.plan(repo)
    summary = summarize_diff(registry_diff)
    to_apply, to_delete, _, _ = extract_objects_for_apply_delete(store.project, store.registry, repo)
    store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    return summary
