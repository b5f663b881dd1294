"""Command line: ``python -m migrator simulate|calibrate|bench``.

This is shell, not core: it parses flags, prints, and draws a progress bar.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

from .engine import Engine
from .errors import MigratorError, ParseError, SpecError
from .events import PassFinished, Progress, StageStarted
from .result import MigrationResult
from .spec import (
    DEFAULT_COMPRESSION_BPS,
    DEFAULT_PAGE_CHANGE_SHARE,
    DEFAULT_TCP_STREAM_BPS,
    OPTION_LABELS,
    PERFORMANCE_OPTIONS,
    POLICIES,
    WORKLOAD_KINDS,
    MigrationSpec,
    WorkloadSpec,
)
from .units import (
    format_duration,
    format_rate,
    format_size,
    parse_count,
    parse_duration,
    parse_rate,
    parse_size,
)

__all__ = ["build_parser", "main", "spec_from_args"]

#: Spec fields → the flag that sets them, for usage errors that name the flag.
_FLAGS: dict[str, str] = {
    "memory_bytes": "--memory",
    "page_size": "--page-size",
    "bandwidth_bps": "--bandwidth",
    "workload": "--workload",
    "working_set_pages": "--working-set-pages",
    "write_rate": "--write-rate",
    "seed": "--seed",
    "downtime_limit_s": "--downtime-limit",
    "min_dirty_pages": "--min-dirty-pages",
    "max_passes": "--max-passes",
    "state_size": "--state-size",
    "zero_fraction": "--zero-fraction",
    "memory_budget_bytes": "--memory-budget",
    "performance_option": "--performance-option",
    "compression": "--compression",
    "compression_bps": "--compression-rate",
    "tcp_stream_bps": "--tcp-stream-rate",
    "page_change_share": "--page-change-share",
    "policy": "--policy",
}


def _typed(parse: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except (ParseError, ValueError) as exc:
            raise argparse.ArgumentTypeError(f"{exc} (expected {what})") from None

    convert.__name__ = what
    return convert


def _int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r} is not within [0, 1]")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``migrator`` argument parser with its two subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m migrator",
        description="Simulated Hyper-V live migration: a page engine.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sim = sub.add_parser(
        "simulate",
        help="migrate one simulated VM and report what happened",
        description="Sizes are binary (4KiB, 1GiB); rates decimal (1Gbit/s).",
    )
    size = _typed(parse_size, "a size such as 4KiB or 1GiB")
    sim.add_argument("--memory", type=size, default=parse_size("1GiB"))
    sim.add_argument("--page-size", type=size, default=4096)
    sim.add_argument(
        "--bandwidth",
        type=_typed(parse_rate, "a rate such as 1Gbit/s"),
        default=1e9,
    )
    sim.add_argument("--workload", choices=WORKLOAD_KINDS, default="idle")
    sim.add_argument(
        "--working-set-pages", type=_typed(_int, "a page count"), default=0
    )
    sim.add_argument(
        "--write-rate",
        type=_typed(parse_count, "writes per second"),
        default=0.0,
        help="page writes per simulated second",
    )
    sim.add_argument("--seed", type=_typed(int, "an integer"), default=0)
    sim.add_argument(
        "--downtime-limit",
        type=_typed(parse_duration, "a duration such as 300ms, or 0"),
        default=0.3,
        help="0 disables the downtime stop rule",
    )
    sim.add_argument("--min-dirty-pages", type=_typed(_int, "a page count"), default=50)
    sim.add_argument("--max-passes", type=_typed(_int, "a pass count"), default=10)
    sim.add_argument("--state-size", type=size, default=64 * 1024)
    sim.add_argument(
        "--zero-fraction",
        type=_typed(_fraction, "a fraction in [0, 1]"),
        default=0.0,
    )
    sim.add_argument(
        "--performance-option",
        choices=PERFORMANCE_OPTIONS,
        default=None,
        help="Hyper-V's performance option (default tcpip)",
    )
    sim.add_argument(
        "--compression",
        action="store_true",
        help="the same as --performance-option compression",
    )
    sim.add_argument(
        "--policy",
        choices=POLICIES,
        default="hyperv",
        help="what pre-copy does when the guest will not converge",
    )
    sim.add_argument(
        "--page-change-share",
        type=_typed(_fraction, "a fraction in (0, 1]"),
        default=DEFAULT_PAGE_CHANGE_SHARE,
        help="share of a page one guest write changes",
    )
    sim.add_argument(
        "--compression-rate",
        type=_typed(parse_rate, "a rate such as 12Gbit/s"),
        default=DEFAULT_COMPRESSION_BPS,
        help="page data the source delta-encodes per second (Compression)",
    )
    sim.add_argument(
        "--tcp-stream-rate",
        type=_typed(parse_rate, "a rate such as 4Gbit/s"),
        default=DEFAULT_TCP_STREAM_BPS,
        help="most one TCP connection carries (TCP/IP and Compression)",
    )
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.add_argument(
        "--memory-budget",
        type=size,
        default=parse_size("1GiB"),
        help="resident memory for source, destination and marks (default 1GiB)",
    )
    sim.set_defaults(usage_error=sim.error)
    cal = sub.add_parser(
        "calibrate",
        help="the model against the engine for the demo's workload profiles",
    )
    cal.add_argument(
        "--seeds", type=_typed(_int, "a seed count"), default=5,
        help="seeded runs per row; their median is the actual figure",
    )  # fmt: skip
    cal.add_argument(
        "--memory-budget", type=size, default=parse_size("512MiB"),
        help="resident memory per move (default 512MiB, the console's)",
    )  # fmt: skip
    cal.add_argument(
        "--policy", choices=POLICIES, action="append", default=None,
        help="only this policy (repeat for several; default: every policy)",
    )  # fmt: skip
    cal.add_argument("--json", action="store_true", help="print one JSON object")
    cal.set_defaults(usage_error=cal.error)
    bench = sub.add_parser("bench", help="measure the engine against its targets")
    bench.add_argument(
        "--quick", action="store_true", help="small sizes and few runs (smoke test)"
    )
    bench.add_argument(
        "--memory", type=size, default=None, help="guest size (default 1GiB)"
    )
    bench.add_argument("--runs", type=_typed(_int, "a run count"), default=None)
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def spec_from_args(args: argparse.Namespace) -> MigrationSpec:
    """The spec the ``simulate`` flags describe; raises :class:`SpecError`."""
    return MigrationSpec(
        memory_bytes=args.memory,
        page_size=args.page_size,
        bandwidth_bps=args.bandwidth,
        workload=WorkloadSpec(
            kind=args.workload,
            working_set_pages=args.working_set_pages,
            write_rate=args.write_rate,
            page_change_share=args.page_change_share,
        ),
        seed=args.seed,
        downtime_limit_s=args.downtime_limit,
        min_dirty_pages=args.min_dirty_pages,
        max_passes=args.max_passes,
        state_size=args.state_size,
        zero_fraction=args.zero_fraction,
        performance_option=args.performance_option
        or ("compression" if args.compression else "tcpip"),
        compression=args.compression or None,
        compression_bps=args.compression_rate,
        tcp_stream_bps=args.tcp_stream_rate,
        policy=args.policy,
        memory_budget_bytes=args.memory_budget,
    )


class _Bar:
    """A one-line progress bar on a terminal."""

    def __init__(self, out: IO[str], total_bytes: float) -> None:
        self.out = out
        self.total = max(1.0, total_bytes)

    def show(self, text: str, done: float) -> None:
        share = min(1.0, done / self.total)
        filled = int(share * 30)
        bar = "#" * filled + "-" * (30 - filled)
        self.out.write(f"\r[{bar}] {share:6.1%} {text:<48.48}")
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()


def _summary(spec: MigrationSpec, result: MigrationResult) -> str:
    p = result.predicted
    size = format_size(spec.memory_bytes)
    rate = format_rate(spec.bandwidth_bps)
    pages = ", ".join(map(str, result.pages_per_pass))
    model = ", ".join(map(str, p.pages_per_pass))
    sent = format_size(result.bytes_sent)
    lines = [
        f"VM of {size} over {rate} ({spec.workload.kind} workload, "
        f"{OPTION_LABELS[spec.performance_option]}, {spec.policy} policy)",
        f"outcome            {result.outcome}; the VM runs on the {result.location}",
    ]
    if result.reason:
        lines.append(f"reason             {result.failed_stage}: {result.reason}")
    lines += [
        f"passes             {result.passes} (predicted {p.passes}), stopped by "
        + f"{result.stop_reason} (predicted {p.stop_reason})",
        f"pages per pass     {pages}",
        f"predicted          {model}",
        f"final dirty pages  {result.final_dirty_pages} "
        + f"(predicted {p.final_dirty_pages})",
        f"bytes sent         {sent} (predicted {format_size(p.bytes_sent)}), "
        + f"{result.zero_pages} zero pages",
        f"total time         {format_duration(result.total_time_s)} "
        + f"(predicted {format_duration(p.total_time_s)})",
        f"downtime           {format_duration(result.downtime_s)} "
        + f"(predicted {format_duration(p.downtime_s)})",
        f"verified           {'yes' if result.verified else 'no'}",
        f"policy             {result.policy}: throttle per pass "
        + ", ".join(f"{t:g} %" for t in result.throttle_pct_per_pass)
        + "; limit per pass "
        + ", ".join(f"{x:g} ms" for x in result.downtime_limit_ms_per_pass)
        + f"; guest slowed {result.guest_slowdown_pct:.1f} %"
        + ("; aborted" if result.aborted else ""),
        f"model              {p.reason}",
        f"wall time          {format_duration(result.wall_time_s)} "
        + f"(+ allocation {format_duration(result.allocation_time_s)})",
    ]
    if result.bytes_saved_by_compression:
        saved = format_size(result.bytes_saved_by_compression)
        lines.append(f"compression saved  {saved}")
    if result.sampled:
        lines.append(
            f"sampled            {result.sample_fraction:.1%} of the pages held "
            "in memory; figures scaled up"
        )
    return "\n".join(lines)


def _simulate(args: argparse.Namespace, out: IO[str]) -> int:
    try:
        spec = spec_from_args(args)
        engine = Engine(spec)
    except SpecError as exc:
        flag = _FLAGS.get(exc.field, exc.field)
        args.usage_error(f"argument {flag}: {exc.message}")
        return 2  # not reached: usage_error exits
    bar = None
    if not args.json and out.isatty():
        bar = _Bar(out, engine.prediction.bytes_sent)
    for event in engine.events():
        if bar is None:
            continue
        if isinstance(event, Progress):
            bar.show(
                f"pass {event.pass_no}, {event.remaining_dirty_pages} pages dirty",
                event.bytes_sent,
            )
        elif isinstance(event, PassFinished):
            bar.show(f"pass {event.pass_no} done", event.bytes)
        elif isinstance(event, StageStarted):
            bar.show(event.stage.label, 0 if event.stage.number < 3 else bar.total)
    if bar is not None:
        bar.close()
    result = engine.result
    assert result is not None
    if args.json:
        out.write(json.dumps(result.to_dict()) + "\n")
    else:
        out.write(_summary(spec, result) + "\n")
    return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for usage errors)."""
    stream = out if out is not None else sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args, stream)
        if args.command == "calibrate":
            from .calibrate import main as calibrate_main

            if args.seeds < 1:
                args.usage_error("argument --seeds: must be at least 1")
            return calibrate_main(
                policies=tuple(args.policy or POLICIES),
                seeds=args.seeds,
                budget=args.memory_budget,
                as_json=args.json,
                out=stream,
            )
        from .bench import main as bench_main

        return bench_main(
            quick=args.quick,
            memory=args.memory,
            runs=args.runs,
            as_json=args.json,
            out=stream,
        )
    except MigratorError as exc:
        print(f"migrator: {exc}", file=sys.stderr)
        return 1
