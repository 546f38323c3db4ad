"""``python -m benchmarks``: HTTP throughput against bare Starlette, then the other suites."""

from __future__ import annotations

import argparse
import asyncio
import importlib


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk measurement")
    parser.add_argument("--passes", type=int, default=3, help="HTTP passes; the report gives medians")
    parser.add_argument("--only", choices=["http", "webhooks", "conformance", "soak"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["http", "webhooks", "conformance", "soak"])
    if "http" in only:
        from benchmarks import http

        print("== HTTP: one uvicorn worker each, wrk -t1 -c32 ==")
        print(http.report(http.run(seconds=args.seconds, passes=args.passes)))
    for name in ("webhooks", "conformance", "soak"):
        if name not in only:
            continue
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError:
            print(f"== {name}: not available ==")
            continue
        print(f"== {name} ==")
        result = module.main()
        if asyncio.iscoroutine(result):
            asyncio.run(result)


if __name__ == "__main__":
    main()
