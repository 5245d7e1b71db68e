"""Score a stage's best model of a finished or running training run as the run's end scores the final model: fit
the per-modality temperatures on validation and late fusion's weights on the run's multimodal corpora (with
--transcripts also on RAVDESS validation clips with their sentences), choose the fusion on the label-matched
validation examples and those rows, then the paired test and RAVDESS with transcripts for both fusions, and each test
set. Usage:

    python scripts/fusion_eval.py RUN_DIR stage1 [--transcripts]
    # writes RUN_DIR/stage1_fusion_eval.json (with --transcripts: stage1_fusion_eval_transcripts.json) and prints it

Used for RESULTS.md's fusion measurement of a stage-1 model; not covered by the tests.
"""
import json
import sys
from pathlib import Path

from emoxformer.config import load_config
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.inference.processor import EmoXFormerProcessor
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training.calibration import calibrate_on_validation, choose_inference_fusion, training_priors
from emoxformer.training.evaluate import (evaluate_predictions, paired_test_metrics, predict, real_pair_rows,
                                          recording_metrics, transcript_examples, transcript_metrics)

run, stage = Path(sys.argv[1]), sys.argv[2]
config = load_config(run / "config.yaml")
config.data.ravdess_transcripts = True
model = EmoXFormer.from_pretrained(run / stage / "best").eval()
preprocessor = Preprocessor.for_model(model.config, run / stage / "best")
dm = EmoDataModule(config.data, preprocessor, batch_size=32, eval_batch_size=128, num_workers=0, seed=config.train.seed, progress=False)
dm.setup()
model.config.modality_priors = training_priors(dm.records, model.config.num_classes)
processor = EmoXFormerProcessor.from_preprocessor(preprocessor)
# Late fusion's weights from the real pairs of validation, as the run's end fits them (the multimodal corpora's rows,
# when train.fit_fusion_weights), plus with --transcripts RAVDESS validation clips with their sentences.
transcripts = "--transcripts" in sys.argv[3:]
real_pairs = real_pair_rows(dm, "val") if config.train.fit_fusion_weights else []
if transcripts:
    real_pairs += transcript_examples(dm, processor, "val")
calibrate_on_validation(model, dm, config.train, real_pairs)
out = {"temperatures": model.config.modality_temperatures, "late_fusion_weights": model.config.modality_weights}
# The fusion choice on what the run's end counts (label-matched examples, the corpora's rows), plus the transcripts.
paired_val = {fusion: dict(subsets) for fusion, subsets in
              paired_test_metrics(model, dm, config.train, seed=config.data.split_seed, split="val").items()}
for name, per_fusion in recording_metrics(model, dm, config.train, split="val").items():
    for fusion, subsets in per_fusion.items():
        paired_val.setdefault(fusion, {}).update({f"{name} {subset}": m for subset, m in subsets.items()})
for fusion, subsets in transcript_metrics(model, dm, processor, config.train, "val").items() if transcripts else ():
    paired_val.setdefault(fusion, {}).update({f"ravdess transcripts {subset}": m for subset, m in subsets.items()})
out["fusion_choice"] = choose_inference_fusion(paired_val)
out["paired_test"] = paired_test_metrics(model, dm, config.train, seed=config.data.split_seed)
out["transcripts"] = transcript_metrics(model, dm, processor, config.train)
test = predict(model, dm, "test", config.train)
out["test"] = {k: {m: v[m] for m in ("accuracy", "weighted_f1")} for k, v in evaluate_predictions(test, dm).items()}
print(json.dumps(out, indent=1))
(run / f"{stage}_fusion_eval{'_transcripts' if transcripts else ''}.json").write_text(json.dumps(out, indent=1))
