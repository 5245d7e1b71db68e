"""The Gradio page of `emoxformer demo`: layout and wiring only; what it computes lives in demo/logic.py."""
from __future__ import annotations

import signal
import tempfile
from pathlib import Path

from ..errors import EmoXFormerError
from ..inference import Predictor
from ..inference.predictor import MODALITY_NAMES
from ..labels import NUM_CLASSES
from .examples import make_examples
from .logic import DemoInputs, page_outputs, timeline_outputs

CSS = """
.per-modality { border-collapse: collapse; width: 100%; }
.per-modality th, .per-modality td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #ddd; }
.per-modality tr.fused td { font-weight: bold; border-top: 2px solid #888; }
.per-modality .bar { display: inline-block; height: 10px; background: #f97316; border-radius: 2px; vertical-align: middle; }
"""
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web-font download: the page works offline


def _gradio():
    try:
        import gradio
    except ImportError:
        raise EmoXFormerError("the demo needs Gradio: pip install 'emoxformer[demo]'") from None
    return gradio


# Uploads (people's voices and faces) are deleted within an hour of their arrival: Gradio looks every
# UPLOAD_SWEEP_S seconds for files older than UPLOAD_MAX_AGE_S, so a file lives at most the sum of the two.
UPLOAD_SWEEP_S = 5 * 60
UPLOAD_MAX_AGE_S = 55 * 60


def build_app(predictor: Predictor, model_name: str, examples_folder: str | Path):
    """The page: inputs on the left, the answer on the right, examples below the inputs."""
    gr = _gradio()
    takes = ", ".join(MODALITY_NAMES[m] for m in predictor.model.modalities)
    with gr.Blocks(title="EmoXFormer demo", analytics_enabled=False, delete_cache=(UPLOAD_SWEEP_S, UPLOAD_MAX_AGE_S)) as app:
        gr.Markdown(f"# EmoXFormer emotion demo\nGive any mix of text, speech, a face photo or a video and press "
                    f"**Predict**. Model `{model_name}` (takes {takes}).")
        with gr.Row():
            with gr.Column(scale=1):
                text = gr.Textbox(label="What was said (Enter predicts)", placeholder="I can't believe it!", elem_id="text-input")
                with gr.Accordion("Earlier turns of the dialogue (optional)", open=False):
                    context, speaker = _dialogue_fields(gr, predictor)
                audio = gr.Audio(label="Speech: a file or the microphone", sources=["upload", "microphone"], type="filepath",
                                 elem_id="audio-input")
                with gr.Row():
                    image = gr.Image(label="Face: a photo or the webcam", sources=["upload", "webcam"], type="filepath",
                                     image_mode=None, height=200, elem_id="image-input")
                    video = gr.Video(label="Video file (the text is its transcript)", sources=["upload"],
                                     height=200, elem_id="video-input")
                detect = gr.Checkbox(value=True, label="Find the face in the image (off: the image is already a cropped face)")
                with gr.Row():
                    predict = gr.Button("Predict", variant="primary", elem_id="predict-button")
                    gr.ClearButton([text, context, speaker, audio, image, video])
                examples = make_examples(examples_folder)
                gr.Examples([[e.text, e.audio, e.image] for e in examples], inputs=[text, audio, image],
                            example_labels=[e.title for e in examples], label="Examples (one click fills the inputs)")
            with gr.Column(scale=1):
                label = gr.Label(num_top_classes=NUM_CLASSES, label="Predicted emotion (all inputs together)", elem_id="fused-label")
                gr.Markdown("**What each input says on its own**")
                table = gr.HTML("<p>No prediction yet.</p>", elem_id="per-modality")
                report = gr.Markdown(elem_id="inputs-report")
                face = gr.Image(label="The face used (green box)", interactive=False, height=240, visible=False,
                                elem_id="face-output")

        def on_predict(text, audio, image, video, detect, context, speaker):
            shown = page_outputs(predictor, DemoInputs(text, audio, image, video, detect, context, speaker))
            face_shown = gr.Image(value=shown.face_image, visible=shown.face_image is not None)
            return shown.probabilities, shown.table_html, shown.report, face_shown

        wiring = dict(fn=on_predict, inputs=[text, audio, image, video, detect, context, speaker],
                      outputs=[label, table, report, face])
        predict.click(**wiring)
        text.submit(**wiring)

        with gr.Accordion("Emotion over time in the video", open=False):
            with gr.Row():
                window = gr.Number(2.0, label="Window (s)", minimum=0.1, elem_id="timeline-window")
                hop = gr.Number(1.0, label="A window every (s)", minimum=0.1, elem_id="timeline-hop")
                transcript = gr.File(label="Transcript with times (.srt or .vtt, optional)", file_types=[".srt", ".vtt"],
                                     type="filepath", elem_id="timeline-transcript")
            over_time = gr.Button("Show emotion over time", elem_id="timeline-button")
            timeline_plot = gr.Image(label="Probabilities over time, and the dominant emotion", interactive=False,
                                     elem_id="timeline-plot")
            timeline_table = gr.Dataframe(label="One row per window", interactive=False, elem_id="timeline-table")
            timeline_report = gr.Markdown(elem_id="timeline-report")

        def on_timeline(video, window, hop, transcript, detect):
            shown = timeline_outputs(predictor, video, window, hop, transcript, detect)
            return shown.plot, shown.table, shown.report

        over_time.click(on_timeline, inputs=[video, window, hop, transcript, detect],
                        outputs=[timeline_plot, timeline_table, timeline_report])
    return app


def _dialogue_fields(gr, predictor: Predictor):
    """Earlier turns and the speaker; read-only with the reason when the model was trained on single utterances."""
    turns = predictor.preprocessor.config.text_context
    takes = turns > 0
    why_not = "this model was trained on single utterances: it takes no dialogue context"
    context = gr.Textbox(label="Earlier turns, oldest first, one \"Speaker: utterance\" a line", lines=3, interactive=takes,
                         placeholder="Ross: are you coming tonight?\nRachel: I don't know yet" if takes else why_not,
                         info=f"the model reads the last {turns}" if takes else None, elem_id="context-input")
    speaker = gr.Textbox(label="Who says the text", placeholder="Monica" if takes else why_not, interactive=takes,
                         elem_id="speaker-input")
    return context, speaker


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 7860, share: bool = False, **predictor_options) -> None:
    """Load the model, build the page and serve it until interrupted."""
    gr = _gradio()
    predictor = Predictor.from_pretrained(model_dir, **predictor_options)
    with tempfile.TemporaryDirectory(prefix="emoxformer-demo-") as examples_folder:
        app = build_app(predictor, str(model_dir), examples_folder)
        theme = gr.themes.Default(primary_hue="orange", font=SYSTEM_FONTS, font_mono=["ui-monospace", "monospace"])
        try:
            _, local_url, share_url = app.launch(
                server_name=host, server_port=port, share=share, theme=theme, css=CSS, ssr_mode=False, quiet=True,
                allowed_paths=[examples_folder], footer_links=[], prevent_thread_lock=True)
        except OSError as error:
            raise EmoXFormerError(f"cannot serve on {host}:{port} ({error}); pass another --port") from None
        print(f"EmoXFormer demo of {model_dir}: {local_url}" + (f"  public link: {share_url}" if share_url else ""), flush=True)
        print("Ctrl-C stops it.", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` too closes the server and removes the examples folder
        try:
            app.block_thread()  # returns on Ctrl-C
        finally:
            app.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt
