"""`python -m platform_assets.serving [--host H] [--port P] [--workers N]`: the scoring service on uvicorn;
`--openapi` prints its OpenAPI schema (kept as docs/openapi.json, checked by the unit tests).

Binds 127.0.0.1:8000 unless told otherwise (PLATFORM_SERVING_HOST / PLATFORM_SERVING_PORT, or the flags); serves
the data directory of the active profile (PLATFORM_DATA_DIR), as `make demo` built it. `make serve` runs this.
"""

from __future__ import annotations

import argparse
import logging

from platform_assets.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    settings = load_settings()
    parser = argparse.ArgumentParser(description="The fraud scoring service")
    parser.add_argument("--host", default=settings.serving_host)
    parser.add_argument("--port", type=int, default=settings.serving_port)
    parser.add_argument("--workers", type=int, default=1, help="processes (each loads the model and logs alone)")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--openapi", action="store_true", help="print the OpenAPI schema (docs/openapi.json) and exit")
    args = parser.parse_args(argv)
    if args.openapi:
        import json

        from platform_assets.serving.app import create_app

        print(json.dumps(create_app(settings).app.openapi(), indent=2, sort_keys=True))
        return
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        "platform_assets.serving.app:create_app", factory=True, host=args.host, port=args.port,
        workers=args.workers, http="httptools", loop="uvloop", access_log=False, log_level=args.log_level,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
