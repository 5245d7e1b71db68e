"""The `emoxformer` command line."""
from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import EmoXFormerError


def _add_data_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--meld", help="MELD folder (holding data/*.csv or the CSVs); default ROOT/meld")
    parser.add_argument("--ravdess", help="RAVDESS folder holding Actor_XX/; default ROOT/ravdess")
    parser.add_argument("--fer2013", help="fer2013.csv or a folder with it or with train/ test/; default ROOT/fer2013")


def _cmd_make_sample_data(args) -> int:
    from .data.sample_data import make_sample_data

    root = make_sample_data(args.dir, size=args.size, seed=args.seed)
    print(f"wrote {args.size} sample data (seed {args.seed}) to {root}: meld/data/*.csv, ravdess/Actor_01..24/, fer2013/fer2013.csv")
    return 0


def _cmd_data_summary(args) -> int:
    from .config import DataConfig
    from .data.summary import format_summary, summarize

    data_config = DataConfig(root=args.root, meld=args.meld, ravdess=args.ravdess, fer2013=args.fer2013,
                             ravdess_split=args.ravdess_split, skip_bad=args.skip_bad)
    summary = summarize(data_config)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 2 if all("error" in info for info in summary.values()) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoxformer",
        description="Multimodal emotion recognition (text, speech, faces) trained on MELD, RAVDESS and FER2013.",
    )
    parser.add_argument("--version", action="version", version=f"emoxformer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sample = commands.add_parser("make-sample-data", help="write small MELD/RAVDESS/FER2013 sample data in the real layouts",
                                 description="Write learnable sample data in exactly the on-disk layouts of MELD, RAVDESS and FER2013.")
    sample.add_argument("dir", help="data root to write (ROOT/meld, ROOT/ravdess, ROOT/fer2013)")
    sample.add_argument("--size", choices=["small", "medium"], default="small", help="small: seconds to write, for tests and the quickstart")
    sample.add_argument("--seed", type=int, default=0, help="the same seed writes the same files")
    sample.set_defaults(func=_cmd_make_sample_data)

    data = commands.add_parser("data", help="inspect datasets")
    data_commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    summary = data_commands.add_parser("summary", help="samples per split and class for each dataset under ROOT")
    summary.add_argument("root", nargs="?", help="data root holding meld/, ravdess/, fer2013/")
    _add_data_paths(summary)
    summary.add_argument("--ravdess-split", choices=["actor", "random"], default="actor",
                         help="actor: speaker-independent (default); random: the seed's leaky file-random split")
    summary.add_argument("--skip-bad", action="store_true", help="skip and count bad rows/files instead of stopping")
    summary.add_argument("--json", action="store_true", help="print one JSON object")
    summary.set_defaults(func=_cmd_data_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except EmoXFormerError as error:
        print(f"emoxformer: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emoxformer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
