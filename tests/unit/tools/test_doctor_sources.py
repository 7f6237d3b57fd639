"""`make doctor` looks for sample data where each source arrives: files, or the simulated source systems."""

from datetime import date

from platform_assets.settings import load_settings, write_sources_file
from platform_assets.tools.doctor import check_landing

LIVE = {"master_data": "database", "chargebacks": "api", "transactions": "stream"}


def test_live_sources_need_their_systems_not_landing_files(tmp_path):
    write_sources_file(tmp_path, LIVE, date(2026, 9, 3))
    settings = load_settings({"PLATFORM_DATA_DIR": str(tmp_path)})
    missing = check_landing(settings)
    assert not missing.ok
    assert "system-of-record database" in missing.detail and "chargeback API" in missing.detail
    assert "transaction stream" in missing.detail and "files under" not in missing.detail
    for path in (settings.sources_dir / "system_of_record.sqlite", settings.chargeback_api_data_path,
                 settings.stream_log_path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    found = check_landing(settings)
    assert found.ok and "source systems" in found.detail


def test_a_file_source_still_needs_its_files(tmp_path):
    write_sources_file(tmp_path, {**LIVE, "transactions": "files"}, None)
    settings = load_settings({"PLATFORM_DATA_DIR": str(tmp_path)})
    finding = check_landing(settings)
    assert not finding.ok and "no transactions files" in finding.detail
