"""The generator's progress bar: a line per tenth off a terminal, and a note on demand."""

from __future__ import annotations

import io

from bench.progress import ProgressBar


def test_a_line_per_tenth_and_a_note_on_demand() -> None:
    stream = io.StringIO()
    bar = ProgressBar("generate", 100, stream=stream)
    for done in range(0, 101, 5):
        bar.update(done)
    bar.say("building 4 indexes")
    bar.close("done")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 + 1 + 1  # 0 % to 90 %, the note, the closing line
    assert lines[-2].endswith("building 4 indexes")
    assert "100/100 entries" in lines[-1]
