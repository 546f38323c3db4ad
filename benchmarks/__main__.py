"""``python -m benchmarks``: every provider against bare Starlette, then the other suites."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import time

from benchmarks.procs import load

SUITES = ("http", "startup", "memory", "store", "webhooks", "conformance", "soak")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--seconds", type=int, default=4, help="seconds per wrk measurement")
    parser.add_argument("--passes", type=int, default=1, help="HTTP passes; with more, the report gives medians")
    parser.add_argument("--only", choices=SUITES, action="append")
    args = parser.parse_args()
    only = set(args.only or SUITES)
    began = time.perf_counter()
    print(f"machine: {load()}")
    if "http" in only:
        from benchmarks import http

        print("== HTTP: one uvicorn process each, wrk -t1 -c32 ==")
        print(http.report(http.run(seconds=args.seconds, passes=args.passes)))
    for name in SUITES[1:]:
        if name not in only:
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name} ==  ({load()})")
        result = module.main()
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    print(f"machine: {load()}; {time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
