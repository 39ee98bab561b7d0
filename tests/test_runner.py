"""verif.runner's build step: a failed build quotes the compiler's message, a build
whose compiler crashed is retried once from a clean folder, and two builds of one folder
never overlap (a fake runner stands in for cocotb's, so no simulator runs here)."""

import threading
import time
from pathlib import Path

import pytest

from verif import runner as vr


class FakeRunner:
    """Writes ``logs[i]`` to the build log on call ``i`` and fails unless it is None."""

    def __init__(self, logs):
        self.logs = list(logs)
        self.calls = 0
        self.removed = []

    def build(self, *, build_dir, log_file, **_):
        text = self.logs[self.calls]
        self.calls += 1
        Path(build_dir).mkdir(parents=True, exist_ok=True)
        Path(log_file).write_text(text or "ok\n")
        if text is not None:
            raise RuntimeError("Command failed with return code: 2")

    def rm_build_folder(self, build_dir):
        self.removed.append(build_dir)


def _build(fake, tmp_path):
    vr._build(fake, sim="verilator", top="t3_x", build_dir=tmp_path / "sim" / "t3_x-k",
              sources=[], build_args=[], waves=False)


def test_design_error_is_quoted_and_not_retried(tmp_path):
    log = "\n".join(f"line {i}" for i in range(100)) + "\n%Error: t3_x.v:3: syntax error\n"
    fake = FakeRunner([log])
    with pytest.raises(RuntimeError) as exc:
        _build(fake, tmp_path)
    msg = str(exc.value)
    assert "%Error: t3_x.v:3: syntax error" in msg and "t3_x-k.build.log" in msg
    assert "line 99" in msg and "line 10\n" not in msg   # only the tail
    assert fake.calls == 1 and fake.removed == []


def test_compiler_crash_is_retried_once_from_a_clean_folder(tmp_path, capsys):
    crash = "c++: internal compiler error: Segmentation fault signal terminated program cc1plus\n"
    fake = FakeRunner([crash, None])
    _build(fake, tmp_path)
    assert fake.calls == 2 and fake.removed == [tmp_path / "sim" / "t3_x-k"]
    assert "compiler crashed" in capsys.readouterr().out


def test_second_compiler_crash_fails(tmp_path):
    crash = "c++: fatal error: Killed signal terminated program cc1plus\n"
    fake = FakeRunner([crash, crash])
    with pytest.raises(RuntimeError, match="Killed signal"):
        _build(fake, tmp_path)
    assert fake.calls == 2


def test_builds_of_one_folder_take_turns(tmp_path):
    """Two workers building the same folder at once (pytest-xdist puts tests of one build
    in different groups on different workers): the builds never overlap."""
    active, overlaps = [], []

    class SlowRunner(FakeRunner):
        def build(self, **kw):
            active.append(1)
            overlaps.append(len(active) > 1)
            time.sleep(0.2)
            active.pop()
            super().build(**kw)

    runners = [SlowRunner([None]), SlowRunner([None])]
    threads = [threading.Thread(target=_build, args=(r, tmp_path)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.calls for r in runners] == [1, 1] and overlaps == [False, False]
