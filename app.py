"""The Gradio app. `python app.py` and `coach serve` both start it (http://127.0.0.1:7860)."""

from assistant.config import load_settings
from assistant.ui import build_app, launch

demo = None

if __name__ == "__main__":
    launch(load_settings())
else:  # `gradio app.py` reload mode looks for a module-level `demo`
    demo = build_app(load_settings())
