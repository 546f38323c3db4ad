"""``veomock check``: grade a client against the mock of one provider.

    veomock check --provider NAME -- python -m examples.clients.NAME
    veomock check --provider NAME --python my_client:generate --junit out.xml
    veomock check --provider NAME --replay replays/NAME_MODEL_hang.json -- ./my-client
    veomock check --provider NAME --speed 60 -- ./my-client        # real time: the client sleeps
    veomock check --provider NAME --traffic-only -- ./my-script    # no outcome line: traffic alone

Exit status: 0 when every applicable check passed, 1 when one failed, 2 for a usage error or a
client that cannot start.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from veomock.conformance.checks import CHECKS
from veomock.conformance.protocol import Capabilities, ProtocolError
from veomock.conformance.report import Progress, summary, write_json, write_junit
from veomock.conformance.runner import (
    Adapter,
    CommandAdapter,
    PythonAdapter,
    Result,
    Runner,
    StartError,
    load_python,
    read_replay,
)
from veomock.conformance.scenarios import KINDS, NOT_TRAFFIC, Scenario, catalogue, scenarios
from veomock.contracts import ContractError, available, load

__all__ = ["TRAFFIC_SPEED", "add_arguments", "explore", "run_check"]

TRAFFIC_SPEED = 60.0  # real-time factor of a traffic-only run when --speed is not given


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", required=True, choices=sorted(available()), help="the provider to grade against")
    parser.add_argument("--python", metavar="MODULE:FUNC", help="an in-process client: func(job, env[, clock])")
    parser.add_argument("--capabilities", metavar="FILE", help="a JSON file of client capabilities")
    parser.add_argument("--webhooks", action="store_true", help="the client receives webhooks")
    parser.add_argument("--no-downloads", action="store_true", help="the client does not download results")
    parser.add_argument("--model", action="append", default=[], help="a model the client supports; repeatable")
    parser.add_argument("--max-retries", type=int, default=None, help="retries the client makes per request")
    parser.add_argument("--kind", action="append", default=[], choices=KINDS, help="only scenarios of this kind")
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="ID",
        help="only this scenario (an id that --explore generated: the catalogue's none, then the exploration)",
    )
    parser.add_argument("--check", action="append", default=[], choices=sorted(CHECKS), help="only this check")
    parser.add_argument("--replay", metavar="FILE", help="run the scenario of a replay file")
    parser.add_argument(
        "--explore",
        type=int,
        default=0,
        metavar="N",
        help="also run N Hypothesis-generated scenarios, shrinking any failure",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the mock")
    parser.add_argument("--replay-dir", default="replays", help="where replay files go (default replays/)")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--json", metavar="FILE", help="write a JSON report")
    parser.add_argument("--timeout", type=float, default=120.0, help="real seconds one client run may take")
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="X",
        help="real-time mode: provider time runs X times faster while the client sleeps for real "
        f"(default: exact mode, the clock URL; {TRAFFIC_SPEED:g} with --traffic-only)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run N scenarios at once, each on its own mock and as its own tenant (default 1)",
    )
    parser.add_argument(
        "--traffic-only",
        action="store_true",
        help="the client prints no outcome: grade its requests alone (the report lists what is skipped)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the client command")


def _capabilities(args: argparse.Namespace) -> Capabilities:
    data: dict[str, Any] = {}
    if args.capabilities:
        data = json.loads(Path(args.capabilities).read_text())
    if args.webhooks:
        data["webhooks"] = True
    if args.no_downloads:
        data["downloads"] = False
    if args.model:
        data["models"] = args.model
    if args.max_retries is not None:
        data["max_retries"] = args.max_retries
    return Capabilities.from_json(data)


def _adapter(args: argparse.Namespace, recorded: str | None = None) -> Adapter:
    command = [c for c in args.command if c != "--"] if args.command else []
    if args.python:
        return PythonAdapter(load_python(args.python), args.python)
    if command:
        return CommandAdapter(command, timeout=args.timeout)
    if recorded:
        if recorded.startswith("--python "):
            spec = recorded.removeprefix("--python ").strip()
            return PythonAdapter(load_python(spec), spec)
        return CommandAdapter(shlex.split(recorded.removeprefix("-- ")), timeout=args.timeout)
    raise ValueError("name the client: -- COMMAND, or --python MODULE:FUNC")


def explore(runner: Runner, scenario_source: Any, count: int) -> Result | None:
    """Run ``count`` generated scenarios; on a failure Hypothesis shrinks it and the minimal
    failing result (with its replay file, the only one exploration writes) is returned. With no
    replay directory its failures name ``--explore count`` to reproduce it: exploration is
    derandomized, so the command's run over ``scenarios(contract, caps)`` draws it again."""
    from hypothesis import HealthCheck, Phase, given, settings

    failing: list[Result] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(scenario_source)
    def probe(scenario: Scenario) -> None:
        result = runner.run(scenario, replay=False)
        if result.failures:
            failing.append(result)
            raise AssertionError(result.failures[0].render())

    try:
        probe()
    except AssertionError:
        return runner.record(failing[-1], explored=count) if failing else None
    return None


def run_check(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    try:
        contract = load(args.provider)
        caps = _capabilities(args)
        recorded = None
        chosen: list[Scenario]
        if args.replay:
            scenario, data = read_replay(args.replay)
            recorded = data.get("client")
            chosen = [scenario]
        else:
            chosen = [
                s
                for s in catalogue(contract, caps)
                if (not args.kind or s.kind in args.kind)
                and (not args.scenario or s.id in args.scenario)
                and not (args.traffic_only and s.kind in NOT_TRAFFIC)
            ]
        if args.traffic_only and chosen:
            # The program picks its own model and request: one model's scenarios cover it.
            chosen = [s for s in chosen if s.model == chosen[0].model]
        adapter = _adapter(args, recorded)
        speed = args.speed if args.speed is not None else (TRAFFIC_SPEED if args.traffic_only else 0.0)
        if speed < 0:
            raise ValueError(f"--speed must be 0 (exact mode) or more, not {speed:g}")
        if args.jobs < 1:
            raise ValueError(f"-j must be 1 or more, not {args.jobs}")
    except (ContractError, ProtocolError, ValueError, OSError, ImportError, AttributeError) as exc:
        print(f"veomock check: {exc}", file=sys.stderr)
        return 2
    exploring = bool(args.explore and not args.replay)
    if not chosen and not exploring:
        print("veomock check: no scenario matches", file=sys.stderr)
        return 2
    replay_dir = Path(args.replay_dir) if args.replay_dir else None
    runner = Runner(
        args.provider,
        adapter,
        caps,
        seed=args.seed,
        replay_dir=replay_dir,
        checks=args.check or None,
        speed=speed,
        traffic_only=args.traffic_only,
        jobs=args.jobs,
    )
    progress = None if args.quiet else Progress(len(chosen), out)
    try:
        with runner:
            results = runner.run_all(chosen, progress)
            if exploring:
                minimal = explore(runner, scenarios(contract, caps), args.explore)
                if minimal is not None:
                    results.append(minimal)
    except StartError as exc:
        print(f"veomock check: {exc}", file=sys.stderr)
        return 2
    print(summary(results, args.provider, adapter.describe(), mode=runner.mode()), file=out)
    if args.junit:
        write_junit(args.junit, results, args.provider)
    if args.json:
        write_json(args.json, results, args.provider, adapter.describe(), mode=runner.mode())
    return 0 if all(r.passed for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="veomock check", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_check(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
