"""Per-dataset, per-split, per-class counts for `emoxformer data summary` and every run directory."""
from __future__ import annotations

from collections import Counter

from ..errors import DataError
from ..labels import EMOTIONS
from .records import SPLITS, SplitRecords
from . import registry
from .sources import load_dataset


def split_summary(records: SplitRecords) -> dict:
    summary = {}
    for split in SPLITS:
        counts = Counter(r.label for r in records[split])
        summary[split] = {"total": len(records[split]), "per_class": {name: counts.get(i, 0) for i, name in enumerate(EMOTIONS)}}
    if records.skipped:
        summary["skipped"] = {"total": len(records.skipped), "examples": records.skipped[:10]}
    if getattr(records, "notes", None):
        summary["notes"] = list(records.notes)
    return summary


def summarize(data_config, datasets=None) -> dict:
    """A summary of each of `datasets` (default: every registered one that this config can name); a missing or
    broken one gets {"error": "..."} instead of counts."""
    result = {}
    for name in registry.known_to(data_config) if datasets is None else datasets:
        try:
            result[name] = split_summary(load_dataset(data_config, name))
        except DataError as error:
            result[name] = {"error": str(error)}
    return result


def format_summary(summary: dict) -> str:
    lines = []
    short = [e[:4] for e in EMOTIONS]
    for name, info in summary.items():
        if "error" in info:
            lines.append(f"{name}: MISSING OR BROKEN — {info['error']}")
            continue
        lines.append(f"{name}")
        lines.append(f"  {'split':<6}{'total':>7}  " + " ".join(f"{s:>5}" for s in short))
        for split in SPLITS:
            counts = info[split]["per_class"]
            lines.append(f"  {split:<6}{info[split]['total']:>7}  " + " ".join(f"{counts[e]:>5}" for e in EMOTIONS))
        if "skipped" in info:
            lines.append(f"  skipped {info['skipped']['total']} rows/files (bad, or unmapped labels dropped), "
                         f"e.g. {info['skipped']['examples'][0]}")
        lines += [f"  note: {note}" for note in info.get("notes", ())]
    return "\n".join(lines)


def summarize_manifest(entry, data_config) -> dict:
    """{name: summary} of one manifest corpus (a `data.extra` entry), or {name: {"error": ...}}. A manifest without
    split information (an evaluation set) counts every row under test."""
    from .manifest import manifest_files, read_manifest
    from .multimodal import MULTI, manifest_columns, read_multimodal_manifest

    try:
        if entry.modality == MULTI:
            split = isinstance(entry.manifest, dict) or all("split" in manifest_columns(path)
                                                              for path, _ in manifest_files(entry.manifest))
            return {entry.name: split_summary(read_multimodal_manifest(entry, data_config, every_row=not split))}
        return {entry.name: split_summary(read_manifest(entry, data_config, unsplit_as_test=True))}
    except DataError as error:
        return {entry.name: {"error": str(error)}}
