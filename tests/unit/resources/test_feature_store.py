"""FeastResource: feature_repo/ rendered for a data directory without forking the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_assets.resources.feature_store import FeastResource
from platform_assets.settings import PROJECT_ROOT

REPO = PROJECT_ROOT / "feature_repo"


def resource(data_dir: Path | str, yaml_name: str = "feature_store.yaml", **kwargs) -> FeastResource:
    return FeastResource(repo_path=str(REPO), feature_store_yaml=str(REPO / yaml_name), data_dir=str(data_dir),
                         **kwargs)


def test_local_config_points_into_the_data_dir(tmp_path):
    config = resource(tmp_path).render_config()
    assert config["project"] == "fraud_platform"
    assert config["registry"] == {"path": f"{tmp_path}/feast/registry.db",
                                  "registry_store_type": "platform_assets.feast_stores.data_dir.DataDirFileRegistryStore"}
    assert config["online_store"] == {"type": "platform_assets.feast_stores.sqlite_online.WideSqliteOnlineStore",
                                      "path": f"{tmp_path}/feast/online_store.db"}
    assert config["offline_store"] == {"type": "platform_assets.feast_stores.duckdb_offline.AsofDuckDBOfflineStore"}
    assert "${" not in repr(config)


def test_data_dir_with_spaces_renders_verbatim(tmp_path):
    data_dir = tmp_path / "My Data" / "platform"
    assert resource(data_dir).render_config()["registry"]["path"] == f"{data_dir}/feast/registry.db"


def test_data_dir_with_yaml_special_characters_renders_verbatim(tmp_path):
    data_dir = tmp_path / "run #1"
    assert resource(data_dir).render_config()["registry"]["path"] == f"{data_dir}/feast/registry.db"


def test_production_config_without_registry_url_names_the_variable(tmp_path):
    with pytest.raises(ValueError, match="PLATFORM_FEAST_REGISTRY_URL"):
        resource(tmp_path, "feature_store.production.yaml", redis_url="127.0.0.1:6379").render_config()
    with pytest.raises(ValueError, match="PLATFORM_REDIS_URL"):
        resource(tmp_path, "feature_store.production.yaml",
                 registry_url="postgresql+psycopg://db:5432/feast").render_config()


def test_production_config_with_urls_renders(tmp_path):
    url = "postgresql+psycopg://db.internal:5432/feast"
    config = resource(tmp_path, "feature_store.production.yaml", registry_url=url,
                      redis_url="redis.internal:6379").render_config()
    assert config["registry"]["registry_type"] == "sql"
    assert config["registry"]["path"] == url
    assert config["online_store"] == {"type": "redis", "connection_string": "redis.internal:6379"}


def test_feature_objects_read_the_exports_of_their_own_data_dir(tmp_path):
    first = resource(tmp_path / "one").feature_objects()
    second = resource(tmp_path / "two").feature_objects()

    assert first.customer_daily_source.path == str(tmp_path / "one" / "exports" / "fct_customer_daily_features.parquet")
    assert first.merchant_daily_source.path == str(tmp_path / "one" / "exports" / "fct_merchant_daily_features.parquet")
    assert second.customer_daily_source.path == str(tmp_path / "two" / "exports" / "fct_customer_daily_features.parquet")
    assert first.customer_daily_features.batch_source.path == first.customer_daily_source.path
    assert second.merchant_daily_features.batch_source.path == second.merchant_daily_source.path
    # The first resource's objects were not re-pointed by building the second's.
    assert first.customer_daily_features.batch_source.path != second.customer_daily_features.batch_source.path

    service = first.fraud_detector_v1
    assert service.name == "fraud_detector_v1"
    assert {p.name for p in service.feature_view_projections} == {"customer_daily_features",
                                                                   "merchant_daily_features"}
    v2 = first.fraud_detector_v2
    assert {p.name for p in v2.feature_view_projections} == {"customer_daily_features", "merchant_daily_features",
                                                              "transaction_features"}
    assert first.customer_merchant_source.path == str(
        tmp_path / "one" / "exports" / "fct_customer_merchant_features.parquet")
    # the velocity state: the push source's batch source is the data dir's own export too
    assert first.customer_recent_transactions.batch_source.path == str(
        tmp_path / "one" / "exports" / "fct_customer_recent_transactions.parquet")
    assert second.customer_transactions_push.batch_source.path == str(
        tmp_path / "two" / "exports" / "fct_customer_recent_transactions.parquet")
    assert len(first.all()) == 18


def test_on_demand_code_is_portable_and_computes_transaction_features():
    """The on-demand function Feast stores runs without the repository's module (it is serialized by value)."""
    import dill
    import pandas as pd

    objects = resource("/nonexistent").feature_objects()
    udf = dill.loads(dill.dumps(objects.transaction_features.feature_transformation.udf, recurse=True))
    out = udf(pd.DataFrame({
        "amount": [50.0, 10.0], "transaction_epoch": [3 * 3600 + 5, 26 * 3600],
        "cust_amount_avg_30d": [25.0, None], "cust_amount_max_30d": [100.0, None],
        "cust_last_txn_epoch": [5, None], "cm_txn_count_to_date": [None, 3],
    }))
    assert out["amount_to_cust_avg_30d"].tolist()[0] == 2.0 and pd.isna(out["amount_to_cust_avg_30d"][1])
    assert out["amount_to_cust_max_30d"].tolist()[0] == 0.5
    assert out["txn_hour_of_day"].tolist() == [3, 2]
    assert out["seconds_since_last_txn"].tolist()[0] == 3 * 3600 and pd.isna(out["seconds_since_last_txn"][1])
    assert out["first_purchase_at_merchant"].tolist() == [1, 0]


@pytest.mark.parametrize("exported", [False, True])
def test_the_feast_cli_reads_the_project_data_dir_unless_one_is_exported(exported, tmp_path, monkeypatch):
    """Feast's own loader (what `feast ...` runs in feature_repo/): `${PLATFORM_DATA_DIR}` falls back to ../data,
    which Feast joins to the repository path, as dbt's profile does from dbt_project/."""
    from feast.infra.online_stores.sqlite import SqliteOnlineStore
    from feast.infra.registry.registry import get_registry_store_class_from_type
    from feast.repo_config import load_repo_config

    if exported:
        monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path))
    else:
        monkeypatch.delenv("PLATFORM_DATA_DIR", raising=False)
    config = load_repo_config(REPO, REPO / "feature_store.yaml")
    data_dir = tmp_path if exported else PROJECT_ROOT / "data"

    # The registry store class Feast instantiates, and the file it opens.
    store = get_registry_store_class_from_type(config.registry.registry_store_type)(config.registry, REPO)
    assert Path(store._filepath).resolve() == data_dir / "feast" / "registry.db"
    assert (REPO / SqliteOnlineStore._get_db_path(config)).resolve() == data_dir / "feast" / "online_store.db"
