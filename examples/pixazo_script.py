"""A script of the kind ``veomock check --traffic-only`` grades: it prints no outcome line.

It makes one Pixazo clip from a fixed prompt, as a shell script with curl would: submit, poll
every ``--interval`` seconds until the job ends, download the clip, print what happened in words.
It reads only VEOMOCK_BASE_URL and VEOMOCK_API_KEY (and VEOMOCK_SPEED, to scale its waits to the
mock's clock); it ignores the job on stdin. Only the standard library.

    veomock check --provider pixazo --traffic-only -- python -m examples.pixazo_script
    veomock check --provider pixazo --traffic-only -- python -m examples.pixazo_script --interval 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

BODY = {"prompt": "a snow-covered tree in spring", "duration": 8, "aspect_ratio": "16:9"}
SUBMIT = "/veo31f/v1/veo-3.1-fast/generate"


def call(url: str, key: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Ocp-Apim-Subscription-Key": key, "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=30) as response:
        return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    parser.add_argument("--retries", type=int, default=3, help="retries of a 429 or 5xx")
    args = parser.parse_args()
    base, key = os.environ["VEOMOCK_BASE_URL"], os.environ["VEOMOCK_API_KEY"]
    speed = float(os.environ.get("VEOMOCK_SPEED") or 1)

    def wait(seconds: float) -> None:
        time.sleep(seconds / speed)

    def retried(url: str, body: Any = None) -> Any:
        for attempt in range(args.retries + 1):
            try:
                return call(url, key, body)
            except urllib.error.HTTPError as exc:
                if exc.code not in (429, 500, 502, 503, 504) or attempt == args.retries:
                    raise
                wait(max(2.0**attempt, float(exc.headers.get("Retry-After") or 0)))
        raise AssertionError("unreachable")

    try:
        job = retried(base + SUBMIT, BODY)
        while True:
            wait(args.interval)
            status = retried(job["polling_url"])
            if status["status"] in ("COMPLETED", "FAILED", "ERROR"):
                break
        if status["status"] != "COMPLETED":
            print(f"job {job['request_id']} ended {status['status']}: {status.get('error')}")
            return
        for url in status["output"]["media_url"]:
            with urllib.request.urlopen(url, timeout=30) as response:
                print(f"saved {len(response.read())} bytes from {url}")
    except urllib.error.HTTPError as exc:
        print(f"refused: HTTP {exc.code}")


if __name__ == "__main__":
    main()
