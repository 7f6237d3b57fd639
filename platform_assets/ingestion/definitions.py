"""The ingestion stage: each source system into DuckDB's `raw` schema, by the way it arrives (settings.sources).

Files are the contract every source can use (`assets.py`). A source system that is reached directly replaces its
file asset under the same asset key, so the warehouse, the checks and the automation downstream see one graph
whichever way the data came: customers and merchants from the system-of-record database (`system_of_record.py`),
chargebacks from the acquirer's API (`chargeback_api.py`), transactions from the event stream
(`transaction_stream.py`).
"""

import dagster as dg

from platform_assets.ingestion.assets import build_ingestion_assets
from platform_assets.ingestion.manifest import landed_files
from platform_assets.lib import names
from platform_assets.lib.partitions import daily_partitions
from platform_assets.settings import Settings

FILE_KEYS = {
    "master_data": names.SNAPSHOT_RAW,
    "chargebacks": (names.RAW_CHARGEBACKS,),
    "transactions": (names.RAW_TRANSACTIONS,),
}


def build_defs(settings: Settings) -> dg.Definitions:
    partitions = daily_partitions(settings.partition_start)
    modes = settings.sources
    from_files = tuple(k for source, keys in FILE_KEYS.items() if getattr(modes, source) == "files" for k in keys)
    live: list[dg.Definitions] = []
    if modes.master_data == "database":
        from platform_assets.ingestion.system_of_record import build_defs as system_of_record_defs

        live.append(system_of_record_defs(settings))
    if modes.chargebacks == "api":
        from platform_assets.ingestion.chargeback_api import build_defs as chargeback_api_defs

        live.append(chargeback_api_defs(settings, partitions))
    if modes.transactions == "stream":
        from platform_assets.ingestion.transaction_stream import build_defs as transaction_stream_defs

        live.append(transaction_stream_defs(settings, partitions))
    return dg.Definitions.merge(
        dg.Definitions(assets=[*build_ingestion_assets(partitions, from_files, settings.warehouse_writer_pool), landed_files]), *live)
