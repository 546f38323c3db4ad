"""The ``veomock`` command: serve the mocks, check the contracts, list every failure mode."""

from __future__ import annotations

import argparse
import difflib
import gc
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from veomock.contracts import ContractError, available, load
from veomock.mocks.runner import PROFILES, create_state, parse_variants

if TYPE_CHECKING:
    from veomock.mocks.state import MockState

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from veomock.mocks.app import CONTROL_PREFIX, build_app
    from veomock.mocks.hosts import is_loopback
    from veomock.mocks.serving import server_options

    open_beyond_loopback = not is_loopback(args.host) and not args.control_token
    if open_beyond_loopback and not args.insecure:
        print(
            f"veomock: the control API on {args.host} would be open to anyone who reaches it; give "
            "--control-token TOKEN (or VEOMOCK_CONTROL_TOKEN), or --insecure to serve it without one",
            file=sys.stderr,
        )
        return 2
    try:
        state = create_state(
            args.provider or None,
            seed=args.seed,
            speed=args.speed,
            profile=args.profile,
            variants=parse_variants(args.variant),
            allow_http_webhooks=args.allow_http_webhooks,
            webhook_ca=args.webhook_ca,
            chaos=_read_chaos(args.chaos),
        )
        state.webhooks.targets.add(args.webhook_allow)
        if args.max_jobs is not None and args.max_jobs < 1:
            raise ValueError(f"--max-jobs needs a positive number, not {args.max_jobs}")
        state.max_jobs = args.max_jobs
        replay = _read_playback(state, args.from_har) if args.from_har else None
    except (ContractError, ValueError, OSError) as exc:
        print(f"veomock: {exc}", file=sys.stderr)
        return 2
    app = build_app(state, control_token=args.control_token or None)
    base = f"http://{args.host}:{args.port}"
    speed = state.clock.speed
    print(f"veomock on {base} (provider time runs {speed:g}x real time, seed {args.seed})")
    for name, contract in state.contracts.items():
        variants = ", ".join(f"{k}={v}" for k, v in contract.variants.items()) or "no variants"
        print(f"  {name:<12} {base}   (real: {contract.upstream}; {variants})")
    guard = "token in X-Veomock-Token" if args.control_token else "no token"
    print(f"  control      {base}{CONTROL_PREFIX}   ({guard})")
    if args.chaos:
        print(f"  chaos        {args.chaos}")
    if args.webhook_allow:
        print(f"  webhooks     loopback and {', '.join(args.webhook_allow)}")
    if replay is not None:
        print(f"  playback     {args.from_har}: {replay}")
    if open_beyond_loopback:
        print("veomock: warning: --insecure: anyone who reaches this port controls the mock", file=sys.stderr)
    sys.stdout.flush()
    # Everything loaded so far (contracts, compiled schemas, libraries) lives as long as the
    # server: keep it out of the garbage collector's full passes, which otherwise grow with it.
    gc.collect()
    gc.freeze()
    # Connection timeouts (keep-alive, request head and body); an open inspector keeps an event
    # stream open, so streams get 2 s to end when stopping.
    options = server_options()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
        **options,
    )
    return 0


def _read_playback(state: MockState, path: str) -> str:
    """Arm the scenario of a recorded session; a line saying what it replays."""
    from veomock.mocks.control import Control

    with open(path, "rb") as handle:
        replay = Control(state).playback(handle.read())
    jobs = ", ".join(" -> ".join(s["state"] for s in job["seen"]) for job in replay["jobs"]) or "no job"
    return f"{len(replay['rules'])} rules for {replay['provider']} ({jobs}); a reset clears them"


def _read_chaos(path: str | None) -> dict[str, object] | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        example = '{"seed": 7, "faults": {"error:internal": 0.05}}'
        raise ValueError(f"{path}: a chaos profile is an object like {example}")
    return data


def _failures(args: argparse.Namespace) -> int:
    from veomock.mocks.failures import catalogue, render_markdown, render_text

    names = list(available())
    for name in args.provider:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            print(f"veomock: no provider {name!r}; {hint}known: {', '.join(names)}", file=sys.stderr)
            return 2
    try:
        contracts = {name: load(name) for name in (args.provider or names)}
    except ContractError as exc:
        print(f"veomock: {exc}", file=sys.stderr)
        return 2
    entries = catalogue(contracts)
    if args.json:
        print(json.dumps(entries, indent=2, ensure_ascii=False))
    elif args.markdown:
        print(render_markdown(entries), end="")
    else:
        print(render_text(entries))
    return 0


def _contracts(args: argparse.Namespace) -> int:
    status = 0
    for name in available():
        try:
            contract = load(name)
            for variant, options in contract.variant_choices().items():
                for option in options:
                    load(name, {variant: option})
        except ContractError as exc:
            print(f"FAIL {exc}")
            status = 1
            continue
        ops = ", ".join(f"{op.method} {op.path}" for op in contract.operations)
        print(f"ok   {name}: {len(contract.models)} models; {ops}")
    return status


def build_parser(grading: bool = True) -> argparse.ArgumentParser:
    """The command line; ``grading=False`` leaves out ``check``, so serving never imports the suite."""
    parser = argparse.ArgumentParser(prog="veomock", description="Mock servers for Veo 3.1 video APIs.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve every provider (or those named) on one port")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--provider",
        action="append",
        default=[],
        choices=sorted(available()),
        help="serve only this provider; repeatable",
    )
    serve.add_argument(
        "--speed",
        type=float,
        default=None,
        help="provider time runs X times faster than real time (overrides --profile)",
    )
    serve.add_argument(
        "--profile",
        default="fast",
        choices=sorted(PROFILES),
        help="fast: 60x (a 2-minute job takes 2 s); realistic: documented timings, 1x",
    )
    serve.add_argument("--seed", type=int, default=0, help="seed for ids, timings and outcomes")
    serve.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="PROVIDER.VARIANT=OPTION",
        help="select a documented alternative (see each contract's variants); repeatable",
    )
    serve.add_argument(
        "--allow-http-webhooks",
        action="store_true",
        help="let callbacks to a loopback receiver use http where a provider wants https",
    )
    serve.add_argument(
        "--max-jobs",
        type=int,
        default=None,
        metavar="N",
        help="hold at most N jobs: a new one evicts the oldest that has ended (default: keep all until a reset)",
    )
    serve.add_argument(
        "--webhook-allow",
        action="append",
        default=[],
        metavar="HOST[:PORT]|CIDR",
        help="let callbacks go to this target too (only loopback by default), e.g. receiver:8080; repeatable",
    )
    serve.add_argument(
        "--webhook-ca",
        metavar="FILE.pem",
        default=None,
        help="trust this CA (PEM) for https callbacks, e.g. a local receiver's test CA",
    )
    serve.add_argument(
        "--chaos",
        metavar="FILE.json",
        default=None,
        help='seeded chaos profile, e.g. {"seed": 7, "faults": {"error:internal": 0.05}}',
    )
    serve.add_argument(
        "--from",
        dest="from_har",
        metavar="SESSION.har",
        default=None,
        help="replay a recorded session (veomock record, or any HAR export) as a scenario",
    )
    serve.add_argument(
        "--control-token",
        metavar="TOKEN",
        default=os.environ.get("VEOMOCK_CONTROL_TOKEN"),
        help="control calls need header X-Veomock-Token: TOKEN (env VEOMOCK_CONTROL_TOKEN)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="serve the control API beyond loopback without a token (refused otherwise)",
    )
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(func=_serve)

    failures = sub.add_parser("failures", help="list every failure mode of every provider, and its trigger")
    failures.add_argument(
        "--provider", action="append", default=[], metavar="NAME", help="only this provider; repeatable"
    )
    shape = failures.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    shape.add_argument("--markdown", action="store_true", help="print tables for the README cookbook")
    failures.set_defaults(func=_failures)

    check = sub.add_parser("contracts", help="load and check every contract and variant")
    check.set_defaults(func=_contracts)

    if grading:
        from veomock.conformance.cli import add_arguments, run_check

        grade = sub.add_parser("check", help="grade a client against a provider's mock: check --provider P -- CMD")
        add_arguments(grade)
        grade.set_defaults(func=run_check)

        # Sessions: record one through a proxy, compare one with the contract.
        from veomock.conformance import drift, record

        recording = sub.add_parser("record", help="a recording proxy in front of the provider (writes a HAR file)")
        record.add_arguments(recording)
        recording.set_defaults(func=record.run_record)

        comparing = sub.add_parser("drift", help="compare a recorded session with the contract (exit 1 on drift)")
        drift.add_arguments(comparing)
        comparing.set_defaults(func=drift.run_drift)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(grading=argv[:1] != ["serve"]).parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
