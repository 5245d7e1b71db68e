"""TrainingResult: what a finished run returns (TwoStageTrainer.run, emoxformer.train)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..model.modeling import EmoXFormer


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """A finished run: where it is, its metrics (the content of RUN_DIR/metrics.json) and the final model's test
    predictions.

    `metrics` holds the test metrics of each trained stage's best model (`{"stage1": {dataset: {...}}, ...}`);
    `best_stage` is the stage whose model became RUN_DIR/best (it validated best, see `selection`), `temperature`
    its fitted softmax temperature (`modality_temperatures`: one per modality; `modality_weights`: late fusion's
    weights, fitted on real pairs, {} for none), `paired_test` the label-matched
    modality-subset test of the model's fused answer and `paired_test_late` of late fusion (None for a single
    dataset), `fusion_choice` which of the two answers multimodal input by default and their validation scores. `test_predictions` are that model's calibrated test predictions (`logits`, `probabilities`, `labels`,
    `dataset` — an index into `dataset_names` — and `ids`, in loader order)."""

    run_dir: Path
    model_dir: Path
    metrics: dict
    best_stage: str
    selection: dict
    temperature: float
    paired_test: dict | None
    test_predictions: dict
    dataset_names: tuple[str, ...]
    paired_test_late: dict | None = None
    fusion_choice: dict | None = None
    modality_temperatures: dict = field(default_factory=dict)
    modality_weights: dict = field(default_factory=dict)
    transcripts: dict = field(default_factory=dict)  # data.ravdess_transcripts: {"transcripts": ..., "transcripts_late": ...}
    # Each multimodal corpus's test rows: {corpus: {"model": {subset: metrics}, "late": {...}}}
    recordings: dict = field(default_factory=dict)

    @property
    def test_metrics(self) -> dict:
        """The final model's per-dataset test metrics (those of `best_stage`)."""
        return self.metrics[self.best_stage]

    def to_dict(self) -> dict:
        """The run's metrics.json: each stage's test metrics, best_stage, selection, temperature, paired_test."""
        values = {**self.metrics, "best_stage": self.best_stage, "selection": self.selection, "temperature": self.temperature,
                  "modality_temperatures": dict(self.modality_temperatures)}
        if self.modality_weights:
            values["modality_weights"] = dict(self.modality_weights)
        if self.paired_test is not None:
            values["paired_test"] = self.paired_test
        if self.paired_test_late is not None:
            values["paired_test_late"] = self.paired_test_late
        values.update(self.transcripts)
        if self.recordings:
            values["recordings"] = self.recordings
        if self.fusion_choice is not None:
            values["fusion_choice"] = self.fusion_choice
            values["inference_fusion"] = self.fusion_choice["fusion"]
        return values

    def load_model(self, map_location: str = "cpu") -> EmoXFormer:
        """The final model (RUN_DIR/best), in eval mode."""
        return EmoXFormer.from_pretrained(self.model_dir, map_location=map_location).eval()

    def load_processor(self):
        """The final model's EmoXFormerProcessor (saved beside it in RUN_DIR/best)."""
        from ..inference.processor import EmoXFormerProcessor

        return EmoXFormerProcessor.from_pretrained(self.model_dir)
