"""`streamlit run` target for the browser test of the Draw page: the real app, with the test's
deterministic stand-in painter (tests/test_draw_page.py) in place of `train.sketch.paint`."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from label_app import painting  # noqa: E402
from test_draw_page import RecordingPainter  # noqa: E402

painting.find_painter = lambda: RecordingPainter()
runpy.run_path(str(HERE.parent / "label_app" / "streamlit_app.py"), run_name="__main__")
