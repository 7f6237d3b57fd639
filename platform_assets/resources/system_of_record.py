"""The system of record: the operational database customers and merchants are extracted from."""

import dagster as dg
from pydantic import Field


class SystemOfRecord(dg.ConfigurableResource):
    """Where the system-of-record database is and where dlt may keep its (disposable) working files.

    In production `url` names PostgreSQL with its password: it is set from PLATFORM_SOURCE_DATABASE_URL as a
    dg.EnvVar, resolved at run time and hidden in the UI.
    """

    url: str = Field(description="SQLAlchemy URL of the database (PLATFORM_SOURCE_DATABASE_URL, default a SQLite "
                                 "file under data/sources)")
    pipelines_dir: str = Field(description="dlt's working folder, emptied before each extraction")
