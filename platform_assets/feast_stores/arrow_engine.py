"""Feast's local compute engine, handing Arrow batches to online stores that take them.

Stock materialization (`LocalComputeEngine`) pulls *every* row of the window through ibis into pandas,
deduplicates there, then converts each value to a protobuf before the online store sees it: at 1M entities that
is ~7 GB and most of the time that the SQLite writes do not take. Here, for a plain feature view (no
transformation, aggregation or filter):

1. the offline store's `pull_latest_from_table_or_query` returns only the newest row per entity (DuckDB does
   the deduplication, with Feast's ordering: event timestamp, then created timestamp);
2. the rows go to the online store in Arrow batches of `materialization.online_write_batch_size` rows, through
   `online_write_arrow` when the store has it (`WideSqliteOnlineStore`).

Any other view, or an online store without `online_write_arrow` (Redis in the production profile), takes
Feast's stock path unchanged. Configured in feature_store.yaml:
`batch_engine: {type: platform_assets.feast_stores.arrow_engine.ArrowLocalComputeEngine}`.
"""

from __future__ import annotations

from typing import Literal

from feast.infra.common.materialization_job import MaterializationTask
from feast.infra.compute_engines.dag.context import ExecutionContext
from feast.infra.compute_engines.local.arrow_table_value import ArrowTableValue
from feast.infra.compute_engines.local.compute import LocalComputeEngine, LocalComputeEngineConfig
from feast.infra.compute_engines.local.feature_builder import LocalFeatureBuilder
from feast.infra.compute_engines.local.nodes import LocalOutputNode, LocalSourceReadNode
from feast.infra.compute_engines.utils import create_offline_store_retrieval_job

ENGINE_TYPE = "platform_assets.feast_stores.arrow_engine.ArrowLocalComputeEngine"
DEFAULT_BATCH_ROWS = 100_000


class ArrowLocalComputeEngineConfig(LocalComputeEngineConfig):
    type: Literal["platform_assets.feast_stores.arrow_engine.ArrowLocalComputeEngine"] = ENGINE_TYPE  # type: ignore[assignment]


def is_plain_view(view) -> bool:
    return (
        getattr(view, "data_source", None) is not None
        and not getattr(view, "feature_transformation", None)
        and not getattr(view, "aggregations", None)
        and not getattr(view, "filter", None)
        and not getattr(view, "enable_validation", False)
    )


class LatestRowsReadNode(LocalSourceReadNode):
    """The newest row per entity in the window, deduplicated by the offline store (not in pandas)."""

    def execute(self, context: ExecutionContext) -> ArrowTableValue:
        config = context.repo_config
        pull_latest = config.materialization_config.pull_latest_features
        try:
            config.materialization_config.pull_latest_features = True
            job = create_offline_store_retrieval_job(
                data_source=self.source,
                context=context,
                start_time=self.start_time,
                end_time=self.end_time,
                column_info=self.column_info,
            )
        finally:
            config.materialization_config.pull_latest_features = pull_latest
        table = job.to_arrow()
        if self.column_info.field_mapping:
            table = table.rename_columns([self.column_info.field_mapping.get(c, c) for c in table.column_names])
        output = ArrowTableValue(data=table)
        context.node_outputs[self.name] = output
        return output


class ArrowOutputNode(LocalOutputNode):
    def execute(self, context: ExecutionContext) -> ArrowTableValue:
        online_store = context.online_store
        write_arrow = getattr(online_store, "online_write_arrow", None)
        if not (self.feature_view.online and write_arrow is not None):
            return super().execute(context)
        table = self.get_single_table(context).data
        output = ArrowTableValue(data=table)
        context.node_outputs[self.name] = output
        if table.num_rows == 0:
            return output
        config = context.repo_config
        source = self.feature_view.batch_source
        join_key_types = {e.name: e.dtype.to_value_type() for e in self.feature_view.entity_columns}
        batch_rows = config.materialization_config.online_write_batch_size or DEFAULT_BATCH_ROWS
        for batch in table.to_batches(max_chunksize=batch_rows):
            write_arrow(
                config=config,
                table=self.feature_view,
                batch=batch,
                join_key_types=join_key_types,
                timestamp_field=source.timestamp_field,
                created_timestamp_column=source.created_timestamp_column or None,
            )
        if self.feature_view.offline:
            context.offline_store.offline_write_batch(
                config=config, feature_view=self.feature_view, table=table, progress=lambda x: None
            )
        return output


class ArrowFeatureBuilder(LocalFeatureBuilder):
    def _fast(self, view) -> bool:
        return (
            isinstance(self.task, MaterializationTask)
            and self.task.only_latest
            and view is self.feature_view
            and is_plain_view(view)
        )

    def _build(self, view, input_nodes):
        if not self._fast(view):
            return super()._build(view, input_nodes)
        node = LatestRowsReadNode(
            "source", view.source, self.get_column_info(view), self.task.start_time, self.task.end_time
        )
        self.nodes.append(node)
        return node

    def build_output_nodes(self, view, input_node):
        if not self._fast(self.dag_root.view):
            return super().build_output_nodes(view, input_node)
        node = ArrowOutputNode("output", self.dag_root.view, inputs=[input_node])
        self.nodes.append(node)
        return node


class ArrowLocalComputeEngine(LocalComputeEngine):
    def _materialize_one(self, registry, task: MaterializationTask, **kwargs):
        from feast.infra.common.materialization_job import MaterializationJobStatus
        from feast.infra.compute_engines.local.job import LocalMaterializationJob

        job_id = f"{task.feature_view.name}-{task.start_time}-{task.end_time}"
        context = self.get_execution_context(registry, task)
        try:
            backend = self._get_backend(context)
            ArrowFeatureBuilder(registry, task, backend=backend).build().execute(context)
            return LocalMaterializationJob(job_id=job_id, status=MaterializationJobStatus.SUCCEEDED)
        except Exception as e:  # noqa: BLE001 - Feast's engines report failures on the job; the provider raises them
            return LocalMaterializationJob(job_id=job_id, status=MaterializationJobStatus.ERROR, error=e)
