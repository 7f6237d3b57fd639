"""`python -m platform_assets.simulator`: write simulated source files into the landing zone."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from platform_assets.settings import load_settings
from platform_assets.simulator import SCENARIOS, SimulationConfig, write_landing_zone


def main(argv: list[str] | None = None) -> None:
    settings = load_settings()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--end", type=date.fromisoformat, default=yesterday, help="last day (default: yesterday)")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--merchants", type=int, default=300)
    parser.add_argument("--transactions-per-day", type=int, default=2_500)
    parser.add_argument("--fraud-rate", type=float, default=0.01)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="none")
    parser.add_argument("--scenario-start-day", type=int, default=None, help="default: two thirds in")
    parser.add_argument("--malformed-rate", type=float, default=0.0005)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-label-delay-days", type=int, default=21, help="longest chargeback delay")
    parser.add_argument("--card-testing-bursts-per-day", type=float, default=0.0,
                        help="card-testing / account-takeover bursts a day (Poisson mean; 0: none)")
    parser.add_argument("--landing-dir", default=str(settings.landing_dir))
    args = parser.parse_args(argv)

    start = args.end - timedelta(days=args.days - 1)
    if settings.partition_start_source == "PLATFORM_PARTITION_START" and start < settings.partition_start:
        parser.error(f"the window starts {start}, before PLATFORM_PARTITION_START={settings.partition_start}")
    config = SimulationConfig(
        start_date=start,
        days=args.days,
        n_customers=args.customers,
        n_merchants=args.merchants,
        transactions_per_day=args.transactions_per_day,
        fraud_rate=args.fraud_rate,
        scenario=args.scenario,
        scenario_start_day=args.scenario_start_day,
        malformed_rate=args.malformed_rate,
        seed=args.seed,
        max_label_delay_days=args.max_label_delay_days,
        card_testing_bursts_per_day=args.card_testing_bursts_per_day,
    )
    t0 = time.perf_counter()
    summary = write_landing_zone(config, Path(args.landing_dir))
    print(
        f"landing zone {args.landing_dir}: {summary.days} days {summary.first_day}..{summary.last_day}, "
        f"{summary.transactions:,} transactions ({summary.fraud_rate:.2%} fraud), "
        f"{summary.chargebacks_written:,} chargebacks reported ({summary.chargebacks_not_yet_reported:,} not yet), "
        f"{summary.malformed_rows} malformed rows, scenario {config.scenario} from day "
        f"{config.effective_start_day}, in {time.perf_counter() - t0:.1f}s"
    )


if __name__ == "__main__":
    main()
