"""Scoring a multimodal manifest (data/multimodal.py): each row's cells are read as `emoxformer predict` reads its
inputs (the Predictor: text, audio file, face image with face detection, video frames and audio track), then every
modality subset is scored for the model's fusion and for late fusion (`row_subset_metrics`)."""
from __future__ import annotations

import sys
from collections import Counter

from ..data.errors_policy import BadRowPolicy
from ..data.multimodal import read_multimodal_manifest
from ..errors import DataError, InputError
from ..inference.processor import MODALITY_NAMES
from ..model.config import MODALITIES
from ..model.modeling import FUSIONS
from .evaluate import evaluation_device, format_paired_table, row_subset_metrics

# A row's manifest cell -> the model modality it feeds (a video feeds vision, and audio through its track).
CELL_MODALITY = {"text": "text", "audio": "audio", "image": "vision"}


def prepare_rows(predictor, records: list, skip_bad: bool = False) -> tuple[list[dict], list[str], list[str]]:
    """(prepared rows for `row_subset_metrics`, notes, skipped rows): each MultiRecord read with the Predictor.
    A row's input the model has no encoder for is left out (noted once); an unreadable input names the manifest
    and row (DataError), or with `skip_bad` skips the row, counted."""
    modalities = set(predictor.model.modalities)
    policy = BadRowPolicy(skip_bad)
    notes: Counter = Counter()
    unread: Counter = Counter()
    rows: list[dict] = []
    uses_context = predictor.model.config.text_context > 0
    for record in records:
        path, line = record.where
        for cell in record.cells:
            if cell in CELL_MODALITY and CELL_MODALITY[cell] not in modalities:
                unread[(CELL_MODALITY[cell], f"the {cell} cells")] += 1
        if record.video is not None and "vision" not in modalities:
            unread[("vision", "the faces of the video cells")] += 1
        if record.video_has_audio and record.audio is None and "audio" not in modalities:
            unread[("audio", "the audio tracks of the video cells")] += 1
        text = record.text if "text" in modalities else None
        audio = record.audio if "audio" in modalities else None
        image = record.image if "vision" in modalities else None
        row: dict = {"id": record.id, "label": record.label}
        try:
            if any(value is not None for value in (text, audio, image)):
                speaker = record.speaker if uses_context and text is not None and record.speaker else None
                sample = predictor.prepare(text=text, audio=audio, image=image, speaker=speaker)
                notes.update(sample.pop("notes"))
                row.update({m: sample[m] for m in MODALITIES if m in sample})
            wants_track = "audio" in modalities and audio is None and record.video_has_audio
            if record.video is not None and ("vision" in modalities or wants_track):
                inputs = predictor.video_inputs(record.video)
                notes.update(inputs.notes)
                if inputs.faces:
                    row["vision"] = inputs.faces
                if wants_track:
                    if inputs.audio is not None:
                        row["audio"] = inputs.audio
                    else:
                        notes["a video's audio track was not used (silent or too short)"] += 1
        except InputError as error:
            policy.bad(path, str(error), line)
            continue
        if not any(m in row for m in MODALITIES):
            notes["a row holds nothing this model reads, and was left out"] += 1
            continue
        rows.append(row)
    lines = [f"{_rows(count)}: {note}" for note, count in notes.items()]
    lines += [f"this model has no {MODALITY_NAMES[modality]} encoder: {what} of {_rows(count)} are not scored"
              for (modality, what), count in unread.items()]
    return rows, lines, policy.skipped


def _rows(count: int) -> str:
    return f"{count} row{'s' if count != 1 else ''}"


def evaluate_multimodal_manifest(model_dir, entry, train_config, skip_bad: bool = False, batch_size: int = 64,
                                 detect_faces: bool = True, fusions=FUSIONS) -> dict:
    """Every modality subset of a multimodal manifest's rows, scored for each fusion:
    {"model": {subset: metrics}, "late": {...}, "inference_fusion", "rows", "notes", "skipped"}."""
    from types import SimpleNamespace

    from ..inference.predictor import Predictor

    records = read_multimodal_manifest(entry, SimpleNamespace(skip_bad=skip_bad), every_row=True)
    if not records.test:
        raise DataError(entry.location() if hasattr(entry, "location") else str(entry.manifest), "no rows to evaluate")
    predictor = Predictor.from_pretrained(model_dir, device=evaluation_device(train_config), detect_faces=detect_faces,
                                          batch_size=batch_size)
    rows, notes, skipped = prepare_rows(predictor, records.test, skip_bad)
    if not rows:
        trained = ", ".join(MODALITY_NAMES[m] for m in predictor.model.modalities)
        raise DataError(str(entry.manifest), f"no row holds an input this model reads (it was trained on {trained})")
    metrics = row_subset_metrics(predictor.model, rows, predictor.processor.collate, train_config, batch_size, fusions)
    return {**metrics, "inference_fusion": predictor.model.config.inference_fusion, "rows": len(rows),
            "notes": records.notes + notes, "skipped": records.skipped + skipped}


def format_multimodal_metrics(result: dict, title: str) -> str:
    late = result.get("late") if "late" in result else None
    table = format_paired_table(result.get("model", {}), late, result.get("inference_fusion"), title)
    lines = [table]
    if result.get("skipped"):
        lines.append(f"skipped {len(result['skipped'])} rows (bad, or unmapped labels dropped)")
    return "\n".join(lines)


def print_notes(result: dict, name: str) -> None:
    for note in result.get("notes", []):
        print(f"note: {name}: {note}", file=sys.stderr)
