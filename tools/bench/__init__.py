"""Benchmarks (not tests): each module is a command; the helpers here are what they share."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from edge.config import Config, RuntimeConfig, load_config

DEFAULT_LFW = Path(__file__).resolve().parents[3] / "shared" / "data" / "lfw"


def add_lfw_pairs_arguments(ap: argparse.ArgumentParser) -> None:
    """--lfw, --pairs and -c/--config, as every benchmark over LFW pairs takes them."""
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument(
        "--pairs", default="pairs.txt", help="pairs file inside --lfw (default: View 2)"
    )
    ap.add_argument("-c", "--config", help="facegate config (default: the shipped one)")


def bench_config(path: str | None, threads: int) -> Config:
    """The config at ``path`` (None: the shipped one) with ``threads`` interpreter threads, its runtime kept."""
    config = load_config(path)
    return replace(config, runtime=RuntimeConfig(backend=config.runtime.backend, threads=threads))
