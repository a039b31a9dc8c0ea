"""soil-model-api: argument parsing only; serving lives in serve.py."""

from __future__ import annotations

import argparse
import logging
import sys

from soil_contracts.cli import run_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soil-model-api",
        description="Serve one soil-spectroscopy model (MODEL_URI, MODEL_DIR or MODEL_API_REGISTERED_FILE) over HTTP.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (uvicorn, one worker)")
    serve.add_argument("--host", help="bind address (default MODEL_API_HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default MODEL_API_PORT or 8000)")
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    sub.add_parser("check", help="load the configured model, run its self-check, print its metadata")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from soil_model_api.config import get_settings
    from soil_model_api.serve import serve

    overrides = {"host": args.host, "port": args.port, "log_level": args.log_level}
    return serve(get_settings().model_copy(update={k: v for k, v in overrides.items() if v is not None}))


def _check(args: argparse.Namespace) -> int:
    from soil_model_api.config import get_settings
    from soil_model_api.serve import check

    return check(get_settings())


COMMANDS = {"serve": _serve, "check": _check}


def main(argv: list[str] | None = None) -> int:
    """Run one verb; exit codes follow ``soil_contracts.errors.ExitCode`` (3: the registry did not answer)."""
    from soil_model_api.registry import translate

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_main("soil-model-api", build_parser(), COMMANDS, argv, translate=translate)


if __name__ == "__main__":
    sys.exit(main())
