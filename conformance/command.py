"""The ``veomock`` command: serve the mocks, check the contracts, list every failure mode."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import gc
import json
import math
import os
import socket
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from veomock.contracts import ContractError, available, load
from veomock.mocks.runner import PROFILES, create_state, parse_variants

if TYPE_CHECKING:
    from veomock.mocks.state import MockState

__all__ = ["main"]

ENV_PREFIX = "VEOMOCK_"
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _version() -> str:
    try:
        return metadata.version("veomock")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


# -- settings: each ``serve`` option, from the command line or else from VEOMOCK_<NAME> --------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 0 to 65535 (0: any free port), not {text!r}")
    return port


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a whole number, not {text!r}") from None


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"a count is a whole number of at least 1, not {text!r}")
    return number


def _speed(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not (math.isfinite(speed) and speed >= 0):
        raise argparse.ArgumentTypeError(f"a speed is a number of at least 0 (0 freezes the clock), not {text!r}")
    return speed


def _one_of(choices: Sequence[str], what: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text in choices:
            return text
        close = difflib.get_close_matches(text, choices, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise argparse.ArgumentTypeError(f"no {what} {text!r}; {hint}known: {', '.join(choices)}")

    return convert


def _items(convert: Callable[[str], str]) -> Callable[[str], list[str]]:
    """A comma-separated list, each item checked by ``convert`` (for an option given many times)."""
    return lambda text: [convert(item.strip()) for item in text.split(",") if item.strip()]


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"a switch is 1 or 0 (true or false), not {text!r}")


def _text(text: str) -> str:
    return text


# dest -> (conversion of the environment's text, default). The variable is VEOMOCK_<DEST>.
_SERVE_SETTINGS: dict[str, tuple[Callable[[str], Any], Any]] = {
    "host": (_text, "127.0.0.1"),
    "port": (_port, 8000),
    "provider": (_items(_one_of(sorted(available()), "provider")), []),
    "speed": (_speed, None),
    "profile": (_one_of(sorted(PROFILES), "profile"), "fast"),
    "seed": (_whole, 0),
    "variant": (_items(_text), []),
    "allow_http_webhooks": (_switch, False),
    "webhook_ca": (_text, None),
    "chaos": (_text, None),
    "control_token": (_text, None),
    "insecure": (_switch, False),
    "max_jobs": (_positive, None),
    "webhook_allow": (_items(_text), []),
    "store": (_text, None),
    "workers": (_positive, 1),
    "log_level": (_one_of(_LOG_LEVELS, "log level"), "warning"),
}


def _env_name(dest: str) -> str:
    return ENV_PREFIX + dest.upper()


def _settle(args: argparse.Namespace) -> None:
    """Fill each option not given on the command line from its environment variable, or its
    default; raise ValueError naming the variable when its value is wrong."""
    for dest, (convert, default) in _SERVE_SETTINGS.items():
        if getattr(args, dest) is not None:
            continue
        name = _env_name(dest)
        raw = os.environ.get(name)
        try:
            value = default if raw is None else convert(raw)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"{name}: {exc}") from None
        setattr(args, dest, value)


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, held until uvicorn takes the port; OSError says what to do."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(
                f"port {port} on {host} is already in use; stop what uses it, or choose another with"
                f" --port (or {_env_name('port')}; 0 picks a free one)"
            ) from None
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port") from None
    return sock


_WORKER_ARGV = "VEOMOCK_WORKER_ARGV"


def worker_app() -> Any:
    """The app of one ``veomock serve --workers N`` worker: the serve arguments, on the shared store."""
    from veomock.mocks.app import build_app

    args = build_parser(grading=False).parse_args(json.loads(os.environ[_WORKER_ARGV]))
    _settle(args)
    state = _state(args)
    gc.collect()
    gc.freeze()
    return build_app(state, control_token=args.control_token or None)


def _state(args: argparse.Namespace) -> MockState:
    state = create_state(
        args.provider or None,
        seed=args.seed,
        speed=args.speed,
        profile=args.profile,
        variants=parse_variants(args.variant),
        allow_http_webhooks=args.allow_http_webhooks,
        webhook_ca=args.webhook_ca,
        chaos=_read_chaos(args.chaos),
        store=args.store,
    )
    state.webhooks.targets.add(args.webhook_allow)
    state.max_jobs = args.max_jobs
    return state


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from veomock.mocks.app import CONTROL_PREFIX, build_app
    from veomock.mocks.hosts import is_loopback, request_host
    from veomock.mocks.serving import server_options

    try:
        _settle(args)
    except ValueError as exc:
        print(f"veomock: {exc}", file=sys.stderr)
        return 2
    open_beyond_loopback = not is_loopback(args.host) and not args.control_token
    if open_beyond_loopback and not args.insecure:
        print(
            f"veomock: the control API on {args.host} would be open to anyone who reaches it; give "
            "--control-token TOKEN (or VEOMOCK_CONTROL_TOKEN), or --insecure to serve it without one",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1 and not args.store:
        print(
            f"veomock: --workers {args.workers}: workers share jobs, balances and the clock only through "
            "a store; give --store redis://HOST:PORT/DB (or serve with one worker)",
            file=sys.stderr,
        )
        return 2
    try:  # every setting is checked before the port is taken, and the port before any banner
        state = _state(args)
        replay = _read_playback(state, args.from_har) if args.from_har else None
        sock = _listen(args.host, args.port)
    except (ContractError, ValueError, OSError) as exc:
        print(f"veomock: {exc}", file=sys.stderr)
        return 2
    app = build_app(state, control_token=args.control_token or None)
    port = sock.getsockname()[1]
    base = "http://" + request_host(None, (args.host, port))
    speed = state.clock.speed
    print(f"veomock on {base} (provider time runs {speed:g}x real time, seed {args.seed})")
    for name, contract in state.contracts.items():
        variants = ", ".join(f"{k}={v}" for k, v in contract.variants.items()) or "no variants"
        print(f"  {name:<12} {base}   (real: {contract.upstream}; {variants})")
    guard = "token in X-Veomock-Token" if args.control_token else "no token"
    print(f"  control      {base}{CONTROL_PREFIX}   ({guard})")
    if args.store:
        print(f"  store        {args.store} ({args.workers} worker{'s' if args.workers > 1 else ''})")
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
    target: Any = app
    if args.workers > 1:  # each worker process builds its own app on the shared store (worker_app)
        os.environ[_WORKER_ARGV] = json.dumps(args.argv)
        # Started afresh in each worker: uvicorn hands its options over by name, not by value.
        http = "veomock.mocks.store_redis:WorkerProtocol"
        options = {**options, "http": http, "workers": args.workers, "factory": True}
        target = "veomock.conformance.command:worker_app"
    # uvicorn binds the port again at once (its supervisor does, for several workers): the socket
    # held it through the checks and the start-up lines, so a port in use was one error above, and
    # --port 0 printed the port uvicorn now takes.
    sock.close()
    uvicorn.run(
        target,
        host=args.host,
        port=port,
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
        replay = Control(state).playback(handle.read(), once=True)
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


def _openapi(args: argparse.Namespace) -> int:
    from veomock.mocks.openapi import document

    try:
        contract = load(args.provider, parse_variants(args.variant).get(args.provider))
    except (ContractError, ValueError) as exc:
        print(f"veomock: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(document(contract, args.base_url), indent=2, ensure_ascii=False))
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


def _serve_epilog() -> str:
    names = ", ".join(_env_name(dest) for dest in _SERVE_SETTINGS)
    return (
        f"Every option can also come from the environment: {names}. An option on the command line"
        f" wins. {_env_name('provider')}, {_env_name('variant')} and {_env_name('webhook_allow')} take a"
        f" comma-separated list; {_env_name('allow_http_webhooks')} and {_env_name('insecure')} take 1 or 0."
    )


def build_parser(grading: bool = True) -> argparse.ArgumentParser:
    """The command line; ``grading=False`` leaves out ``check``, so serving never imports the suite."""
    parser = argparse.ArgumentParser(
        prog="veomock",
        description="Mock servers for Veo 3.1 video APIs.",
        epilog=f"veomock serve also reads its options from {ENV_PREFIX}* environment variables (veomock serve --help).",
    )
    parser.add_argument("--version", action="version", version=f"veomock {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve every provider (or those named) on one port", epilog=_serve_epilog())

    def option(flag: str, help: str, **kwargs: Any) -> None:
        """A serve option; unset, it is read from its environment variable (:func:`_settle`)."""
        dest = flag.removeprefix("--").replace("-", "_")
        default = _SERVE_SETTINGS[dest][1]
        shown = "" if default is None or isinstance(default, bool | list) else f"default {default}; "
        serve.add_argument(flag, default=None, help=f"{help} ({shown}env {_env_name(dest)})", **kwargs)

    option("--host", "address to bind")
    option("--port", "port; 0 picks a free one", type=_port)
    option("--provider", "serve only this provider; repeatable", action="append", choices=sorted(available()))
    option("--speed", "provider time runs X times faster than real time; overrides --profile", type=_speed)
    option("--profile", "fast: 60x (a 2-minute job takes 2 s); realistic: the documented timings", choices=PROFILES)
    option("--seed", "seed for ids, timings and outcomes", type=_whole)
    option(
        "--variant",
        "a documented alternative (see each contract's variants); repeatable",
        action="append",
        metavar="PROVIDER.VARIANT=OPTION",
    )
    option(
        "--allow-http-webhooks",
        "let callbacks to a loopback receiver use http where a provider wants https",
        action="store_true",
    )
    option("--max-jobs", "hold at most N jobs: a new one evicts the oldest that has ended", type=_positive, metavar="N")
    option(
        "--webhook-allow",
        "let callbacks go to this target too (only loopback by default), e.g. receiver:8080; repeatable",
        action="append",
        metavar="HOST[:PORT]|CIDR",
    )
    option("--webhook-ca", "trust this CA (PEM) for https callbacks, e.g. a local receiver's", metavar="FILE.pem")
    option("--chaos", 'seeded chaos profile, e.g. {"seed": 7, "faults": {"error:internal": 0.05}}', metavar="FILE.json")
    serve.add_argument(
        "--from",
        dest="from_har",
        metavar="SESSION.har",
        default=None,
        help="replay a recorded session (veomock record, or any HAR export) as a scenario",
    )
    option("--control-token", "control calls need header X-Veomock-Token: TOKEN", metavar="TOKEN")
    option("--insecure", "serve the control API beyond loopback with no token (refused otherwise)", action="store_true")
    option(
        "--store",
        "keep jobs, balances, the clock and the journal in Redis, shared by every worker and host",
        metavar="redis://HOST:PORT/DB",
    )
    option("--workers", "worker processes (more than one needs --store)", type=_positive)
    option("--log-level", "uvicorn's log level", choices=_LOG_LEVELS)
    serve.set_defaults(func=_serve)

    failures = sub.add_parser("failures", help="list every failure mode of every provider, and its trigger")
    failures.add_argument(
        "--provider", action="append", default=[], metavar="NAME", help="only this provider; repeatable"
    )
    shape = failures.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    shape.add_argument("--markdown", action="store_true", help="print tables for the README cookbook")
    failures.set_defaults(func=_failures)

    spec = sub.add_parser("openapi", help="print a provider's OpenAPI 3.1 document, generated from its contract")
    spec.add_argument("--provider", required=True, choices=sorted(available()))
    spec.add_argument("--base-url", default="http://127.0.0.1:8000", help="the server the document names")
    spec.add_argument("--variant", action="append", default=[], metavar="PROVIDER.VARIANT=OPTION")
    spec.set_defaults(func=_openapi)

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
    args.argv = argv  # what the workers of veomock serve --workers N parse
    try:
        result: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (veomock failures --json | head): stop quietly, as a Unix tool
        # killed by SIGPIPE does; what is still buffered goes nowhere instead of into a traceback.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    return result


if __name__ == "__main__":
    sys.exit(main())
