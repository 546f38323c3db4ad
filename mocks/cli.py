"""The ``veomock`` command: serve the mocks, check the contracts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from contracts import ContractError, available, load

from mocks.runner import PROFILES, create_state, parse_variants

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mocks.app import CONTROL_PREFIX, build_app

    try:
        state = create_state(
            args.provider or None,
            seed=args.seed,
            speed=args.speed,
            profile=args.profile,
            variants=parse_variants(args.variant),
            allow_http_webhooks=args.allow_http_webhooks,
            webhook_ca=args.webhook_ca,
        )
    except (ContractError, ValueError, OSError) as exc:
        print(f"veomock: {exc}", file=sys.stderr)
        return 2
    app = build_app(state)
    base = f"http://{args.host}:{args.port}"
    speed = state.clock.speed
    print(f"veomock on {base} (provider time runs {speed:g}x real time, seed {args.seed})")
    for name, contract in state.contracts.items():
        variants = ", ".join(f"{k}={v}" for k, v in contract.variants.items()) or "no variants"
        print(f"  {name:<12} {base}   (real: {contract.upstream}; {variants})")
    print(f"  control      {base}{CONTROL_PREFIX}")
    sys.stdout.flush()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veomock", description="Mock servers for Veo 3.1 video APIs.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve every provider (or those named) on one port")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--provider", action="append", default=[], choices=sorted(available()),
                       help="serve only this provider; repeatable")
    serve.add_argument("--speed", type=float, default=None,
                       help="provider time runs X times faster than real time (overrides --profile)")
    serve.add_argument("--profile", default="fast", choices=sorted(PROFILES),
                       help="fast: 60x (a 2-minute job takes 2 s); realistic: documented timings, 1x")
    serve.add_argument("--seed", type=int, default=0, help="seed for ids, timings and outcomes")
    serve.add_argument("--variant", action="append", default=[], metavar="PROVIDER.VARIANT=OPTION",
                       help="select a documented alternative (see each contract's variants); repeatable")
    serve.add_argument("--allow-http-webhooks", action="store_true",
                       help="let callbacks to a loopback receiver use http where a provider wants https")
    serve.add_argument("--webhook-ca", metavar="FILE.pem", default=None,
                       help="trust this CA (PEM) for https callbacks, e.g. a local receiver's test CA")
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(func=_serve)

    check = sub.add_parser("contracts", help="load and check every contract and variant")
    check.set_defaults(func=_contracts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
