"""`emoxformer demo`: a Gradio page over the Predictor; logic.py holds the parts that need no browser."""
