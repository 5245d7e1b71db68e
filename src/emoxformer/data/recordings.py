"""Multimodal corpora in training: each manifest row (one recording's transcript, speech, face or video) is one
example that holds all of them, the real pairs that disjoint datasets lack.

A row is taken apart into one record per modality it holds, each kept in a part of its modality (a RecordDataset:
the text, audio and vision code prepares, augments and feature-caches it as it does any dataset's), and a
`RecordingSet` puts a row's parts back together as one example, its `dataset` index the corpus's. In training each
of an example's modalities is dropped with the corpus's `modality_dropout` (never all), so every modality also
learns to answer alone; validation and test examples keep all of them.

What a cell becomes (as `predict` reads it):
- `text`: the transcript (no dialogue context);
- `audio`: the clip; `video` without an `audio` cell: the video's audio track;
- `image`: the largest face, padded (emoxformer.faces.face_box, as prediction chooses it); `video`: the faces of up to DEFAULT_VIDEO_FRAMES
  frames spread over it, of which a training draw takes one at random and validation the middle one.
An image or video without a face (and too large to be a face crop) keeps its other cells, and the corpus's reading
notes how many; a row left with no cell is skipped and counted.
"""
from __future__ import annotations

import copy as _copy
import numpy as np
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..faces import crop, face_box, frame_faces
from ..media import DEFAULT_VIDEO_FRAMES, decode_image, read_video
from ..model.config import MODALITIES
from . import registry
from .datasets import RecordDataset, merge_samples
from .records import SPLITS, AudioRecord, ImageRecord, MultiRecord, SplitRecords, TextRecord

VIDEO_MAX_SECONDS = 600.0  # as long as prediction reads


class RecordingSet(Dataset):
    """One split of a multimodal corpus: example i joins the part records of row i. `members[i]` maps each modality
    the row holds to its indices in that modality's part (several for a video's faces)."""

    def __init__(self, records: list[MultiRecord], parts: dict[str, Dataset], members: list[dict[str, list[int]]],
                 dataset_index: int, modality_dropout: float = 0.0):
        self.records, self.parts, self.members = records, parts, members
        self.dataset_index = dataset_index
        self.modality_dropout = modality_dropout
        self.state = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key) -> dict:
        index, draw_seed = key if isinstance(key, tuple) else (key, None)
        rng = np.random.default_rng(draw_seed) if draw_seed is not None else None
        samples = []
        for modality, choices in self.members[index].items():
            if rng is None:
                samples.append(self.parts[modality][choices[len(choices) // 2]])
            else:
                pick = choices[int(rng.integers(len(choices)))]
                samples.append(self.parts[modality][(pick, int(rng.integers(2**62)))])
        example = merge_samples(samples, self.modality_dropout if rng is not None else 0.0, rng)
        example.update(id=self.records[index].id, dataset=self.dataset_index)
        return example

    def lengths(self) -> list[int]:
        """Each example's longest input (for length bucketing)."""
        part_lengths = {m: part.lengths() for m, part in self.parts.items()}
        return [max(part_lengths[m][i] for m, choices in row.items() for i in choices) for row in self.members]

    def with_parts(self, parts: dict[str, Dataset]) -> "RecordingSet":
        """A copy reading its modalities from `parts` (e.g. the feature cache's encoder outputs)."""
        copy = _copy.copy(self)
        copy.parts = {m: parts.get(m, part) for m, part in self.parts.items()}
        return copy


def recording_splits(records: SplitRecords, dataset_index: int, preprocessor, data_config, modality_dropout: float,
                     replicate: int = 1, progress: bool = True) -> tuple[dict[str, RecordingSet], list[str]]:
    """The train/val/test RecordingSets of a multimodal corpus, and notes on cells that could not be used."""
    image_size = preprocessor.config.image_size
    rate = preprocessor.config.sample_rate
    split_parts: dict[str, dict[str, list]] = {}
    split_members: dict[str, list[dict[str, list[int]]]] = {}
    split_rows: dict[str, list[MultiRecord]] = {}
    faceless, empty = [], []
    rows = [(split, record) for split in SPLITS for record in records[split]]
    for position, (split, record) in enumerate(tqdm(rows, desc="reading recordings", leave=False,
                                                    disable=not progress or len(rows) < 50)):
        parts = split_parts.setdefault(split, {m: [] for m in MODALITIES})
        cells = _cells(record, split, position, image_size, rate, faceless)
        if not cells:
            empty.append(record.id)
            continue
        members = {}
        for modality, part_records in cells.items():
            members[modality] = list(range(len(parts[modality]), len(parts[modality]) + len(part_records)))
            parts[modality].extend(part_records)
        split_members.setdefault(split, []).append(members)
        split_rows.setdefault(split, []).append(record)
    part_records = {m: [r for split in SPLITS for r in split_parts.get(split, {}).get(m, [])] for m in MODALITIES}
    states = {m: registry.modality(m).setup(part_records[m], data_config, preprocessor, progress)
              for m in MODALITIES if part_records[m]}
    result = {}
    for split in SPLITS:
        augment = data_config.augment if split == "train" else None
        parts = {m: RecordDataset(recs, dataset_index, preprocessor, augment, states[m])
                 for m, recs in split_parts.get(split, {}).items() if recs}
        rows_of_split = split_rows.get(split, [])
        members = split_members.get(split, [])
        times = replicate if split == "train" else 1
        result[split] = RecordingSet(rows_of_split * times, parts, members * times, dataset_index,
                                     modality_dropout if split == "train" else 0.0)
    notes = []
    if faceless:
        notes.append(f"{len(faceless)} images or videos without a face (e.g. {faceless[0]}): their rows were used "
                     f"without faces")
    if empty:
        notes.append(f"{len(empty)} rows with no usable cell were skipped (e.g. {empty[0]})")
    return result, notes


def _cells(record: MultiRecord, split: str, position: int, image_size: int, rate: int, faceless: list) -> dict[str, list]:
    """The part records of one row, by modality (its transcript a dialogue of its own: no other row is context)."""
    cells: dict[str, list] = {}
    if record.text is not None:
        cells["text"] = [TextRecord(id=record.id, label=record.label, text=record.text, speaker=record.speaker,
                                    dialogue_id=position, utterance_id=0, split=split)]
    if record.audio is not None:
        cells["audio"] = [AudioRecord(id=record.id, label=record.label, path=record.audio)]
    elif record.video is not None and record.video_has_audio:
        cells["audio"] = [AudioRecord(id=record.id, label=record.label, path=record.video)]
    faces = []
    if record.image is not None:
        image = decode_image(record.image)
        box, _ = face_box(image, image_size)
        faces = [crop(image, box)] if box is not None else []
    elif record.video is not None:
        frames, _ = read_video(record.video, DEFAULT_VIDEO_FRAMES, rate, VIDEO_MAX_SECONDS, audio=False)
        faces, _ = frame_faces(frames, image_size)
        faces = faces or []
    if faces:
        cells["vision"] = [ImageRecord(id=f"{record.id}#{k}" if len(faces) > 1 else record.id, label=record.label,
                                       usage=split, pixels=np.ascontiguousarray(face)) for k, face in enumerate(faces)]
    elif record.image is not None or record.video is not None:
        faceless.append(str(record.image or record.video))
    return cells

