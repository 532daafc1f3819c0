"""python -m tools.report: how well does the door decide?

  python -m tools.report LOG... --labels labels.csv [--outdir report/]
  python -m tools.report LOG... --labels-from-sources nuaa --enrolled subject0001,subject0004 --html r.html
  python -m tools.report review LOG... --labels labels.csv [--only unlock]

LOG is a decision log; a live log (decisions.jsonl) brings its rotated
siblings (decisions.jsonl.N.gz) along.  Prints a summary; --html, --markdown,
--json (or --outdir for all three plus the PNG plots) write the full report.
Errors are one line on stderr and a non-zero exit (edge.errors.ExitCode).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from edge.cli import run_command, setup_logging
from edge.errors import ExitCode
from edge.files import atomic_write_bytes
from tools.report import ReportError
from tools.report.collect import collect
from tools.report.labels import (
    CsvLabeller,
    Labeller,
    NoLabels,
    NuaaLabeller,
    parse_enrolled,
    read_labels,
)
from tools.report.metrics import Report, build_report

PROG = "tools/report"
log = logging.getLogger("tools.report")


def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "logs",
        nargs="+",
        type=Path,
        metavar="LOG",
        help="decision log(s); rotated siblings are found",
    )
    ap.add_argument(
        "--enrolled", help="comma-separated enrolled names (default: every name the log shows)"
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--debug", action="store_true", help="tracebacks for internal errors")


def report_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _common(ap)
    truth = ap.add_mutually_exclusive_group()
    truth.add_argument(
        "--labels", type=Path, help="CSV event_id,truth (truth: a name, impostor or attack)"
    )
    truth.add_argument(
        "--labels-from-sources", choices=("nuaa",), help="truth from NUAA frame paths in sources"
    )
    ap.add_argument(
        "--target-far",
        type=float,
        default=1e-3,
        help="FAR the recommended threshold must show (default 1e-3)",
    )
    ap.add_argument(
        "--threshold-ignores-attacks",
        action="store_true",
        help="choose the recommended threshold on strangers only (photo attacks are liveness's job); "
        "attacks still count as false accepts in the confusion matrix",
    )
    ap.add_argument(
        "--safety-margin",
        type=float,
        default=0.01,
        help="added to the zero-false-accept threshold when the target cannot be shown (default 0.01)",
    )
    ap.add_argument(
        "--min-margin",
        type=float,
        help="min_margin for the sweep (default: each record's logged one)",
    )
    ap.add_argument("--html", type=Path, help="self-contained HTML report (plots embedded)")
    ap.add_argument(
        "--markdown", type=Path, help="Markdown report (plots written beside it as PNG)"
    )
    ap.add_argument("--json", type=Path, help="every number as JSON (null where undefined)")
    ap.add_argument(
        "--outdir", type=Path, help="write report.html, report.md, report.json and the PNGs here"
    )
    ap.add_argument(
        "--skip-bad-records",
        action="store_true",
        help="warn about and skip corrupt lines or records instead of stopping",
    )
    ap.add_argument("-q", "--quiet", action="store_true", help="no terminal summary")
    return ap


def review_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=f"{PROG} review", description="Label unlabelled decisions at the terminal."
    )
    _common(ap)
    ap.add_argument(
        "--labels", type=Path, required=True, help="CSV to append answers to (created if missing)"
    )
    ap.add_argument(
        "--only",
        choices=("unlock", "deny"),
        help="review only unlocks (the ones that matter most) or denials",
    )
    return ap


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc.strerror or exc}") from None


def write_outputs(report: Report, args: argparse.Namespace) -> list[Path]:
    """Every requested file; plots are drawn once and only if something shows them."""
    from tools.report import render
    from tools.report.json_report import to_json

    html_paths = [p for p in (args.html, args.outdir and args.outdir / "report.html") if p]
    md_paths = [p for p in (args.markdown, args.outdir and args.outdir / "report.md") if p]
    json_paths = [p for p in (args.json, args.outdir and args.outdir / "report.json") if p]
    written: list[Path] = []
    plots: dict[str, bytes] = {}
    if html_paths or md_paths:
        from tools.report.plots import all_plots

        plots = all_plots(report)
    for p in html_paths:
        _write(p, render.to_html(report, plots).encode("utf-8"))
        written.append(p)
    for p in md_paths:
        in_outdir = args.outdir is not None and p == args.outdir / "report.md"
        files = {k: f"{k}.png" if in_outdir else f"{p.stem}.{k}.png" for k in plots}
        for key, name in files.items():
            _write(p.parent / name, plots[key])
            written.append(p.parent / name)
        _write(p, render.to_markdown(report, files).encode("utf-8"))
        written.append(p)
    for p in json_paths:
        _write(
            p,
            (json.dumps(to_json(report), separators=(",", ":"), allow_nan=False) + "\n").encode(
                "utf-8"
            ),
        )
        written.append(p)
    return written


def cmd_report(args: argparse.Namespace) -> int:
    if not 0 < args.target_far < 1:
        raise ReportError(f"--target-far: must be between 0 and 1, got {args.target_far:g}")
    if not args.safety_margin >= 0:
        raise ReportError(f"--safety-margin: must be >= 0, got {args.safety_margin:g}")
    enrolled = parse_enrolled(args.enrolled) if args.enrolled is not None else None
    labeller: Labeller
    if args.labels is not None:
        labeller = CsvLabeller(read_labels(args.labels), f"{args.labels} (event_id,truth)")
    elif args.labels_from_sources == "nuaa":
        labeller = NuaaLabeller()
    else:
        log.warning(
            "no --labels or --labels-from-sources: every decision is unlabelled; only counts are reported"
        )
        labeller = NoLabels()
    start = time.perf_counter()
    cols = collect(
        args.logs,
        labeller,
        min_margin=args.min_margin,
        enrolled=enrolled,
        strict=not args.skip_bad_records,
    )
    report = build_report(
        cols,
        label_source=labeller.description,
        enrolled=enrolled,
        target_far=args.target_far,
        safety_margin=args.safety_margin,
        attacks=not args.threshold_ignores_attacks,
    )
    log.info(
        "%d decisions read and analysed in %.1f s", report.records, time.perf_counter() - start
    )
    written = write_outputs(report, args)
    if not args.quiet:
        from tools.report.render import to_text

        sys.stdout.write(to_text(report))
    for p in written:
        print(f"wrote {p}")
    return ExitCode.OK


def cmd_review(args: argparse.Namespace) -> int:
    from tools.report.review import review

    enrolled = parse_enrolled(args.enrolled) if args.enrolled is not None else None
    review(args.logs, args.labels, enrolled=enrolled, only=args.only)
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["review"]:
        args, command = review_parser().parse_args(argv[1:]), cmd_review
    else:
        args, command = (
            report_parser().parse_args(argv[1:] if argv[:1] == ["report"] else argv),
            cmd_report,
        )
    setup_logging(
        logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    )
    return run_command(PROG, lambda: command(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
