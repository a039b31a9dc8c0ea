"""soil-model-api: argument parsing only; serving lives in serve.py."""

from __future__ import annotations

import argparse
import logging
import sys

from soil_model_api.errors import ModelApiError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soil-model-api",
        description="Serve one soil-spectroscopy model (MODEL_URI or MODEL_DIR) over HTTP.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (uvicorn, one worker)")
    serve.add_argument("--host", help="bind address (default MODEL_API_HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default MODEL_API_PORT or 8000)")
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    sub.add_parser("check", help="load the configured model, run its self-check, print its metadata")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    from soil_model_api.config import get_settings
    from soil_model_api.serve import check, serve

    try:
        settings = get_settings()
        if args.command == "serve":
            overrides = {k: v for k, v in {"host": args.host, "port": args.port,
                                            "log_level": args.log_level}.items() if v is not None}
            return serve(settings.model_copy(update=overrides))
        return check(settings)
    except ModelApiError as exc:
        print(f"soil-model-api {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
