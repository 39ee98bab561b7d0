"""The trace file format: round trip, and the loader rejects malformed files with one
clear line (file, field, problem)."""

import json

import numpy as np
import pytest

from contract.gemm import GemmSpec
from contract.sizing import config_for
from contract.spec import ConfigError, T3Config
from sim_models.trace import load_header, load_traces, save_traces
from sim_models.workload import make_workload


@pytest.fixture
def saved(tmp_path):
    g = GemmSpec(m=40, n=32, k=9, devices=3, layout="row", wg_tile=(8, 16), wf_tile=(8, 8), cus=2)
    w = make_workload(config_for(g, T3Config(line_bytes=16)), g)
    save_traces(tmp_path, w)
    return tmp_path, w


def test_round_trip(saved):
    path, w = saved
    cfg, gemm, programs, traces = load_traces(path)
    assert cfg == w.cfg and gemm == w.gemm and programs == w.programs
    for a, b in zip(traces, w.traces):
        for k, v in a.arrays().items():
            assert v.dtype == b.arrays()[k].dtype and np.array_equal(v, b.arrays()[k])
    assert load_header(path)["fuse_allgather"] is True


def edit_header(fn):
    def mutate(path):
        h = json.loads((path / "trace.json").read_text())
        fn(h)
        (path / "trace.json").write_text(json.dumps(h))
    return mutate


def edit_npz(dev, fn):
    def mutate(path):
        f = path / f"device{dev}.npz"
        with np.load(f) as z:
            arrays = {k: z[k] for k in z.files}
        fn(arrays)
        np.savez(f, **arrays)
    return mutate


def _set(arrays, key, index, value):
    a = arrays[key].copy()
    a[index] = value
    arrays[key] = a


def _local_index(arrays):
    return int(np.flatnonzero(arrays["route"] == 0)[0])


MALFORMED = {
    "missing header": (lambda p: (p / "trace.json").unlink(), "trace.json: cannot read"),
    "not json": (lambda p: (p / "trace.json").write_text("{oops"), "not valid JSON"),
    "format name": (edit_header(lambda h: h.update(format="other")), "format='other'"),
    "version": (edit_header(lambda h: h.update(version=2)), "version=2"),
    "missing field": (edit_header(lambda h: h.pop("gemm")), "gemm: missing field"),
    "field type": (edit_header(lambda h: h.update(programs={})), "programs: must be a JSON list"),
    "config invalid": (edit_header(lambda h: h["config"].update(line_bytes=48)), "line_bytes=48"),
    "config vs gemm": (edit_header(lambda h: h["config"].update(ring_devices=4)), "ring_devices=4"),
    "gemm invalid": (edit_header(lambda h: h["gemm"].update(m=0)), "m=0"),
    "program invalid": (edit_header(lambda h: h["programs"][1]["regions"][0].update(limit=0)),
                        "programs[1]: device 1 region 0: limit=0"),
    "program count": (edit_header(lambda h: h["programs"].pop()), "programs: 2 entries"),
    "missing npz": (lambda p: (p / "device1.npz").unlink(), "device1.npz: cannot read"),
    "corrupt npz": (lambda p: (p / "device2.npz").write_bytes(b"not a zip"), "not a readable .npz"),
    "missing array": (edit_npz(0, lambda a: a.pop("wf_id")), "wf_id: missing array"),
    "unknown array": (edit_npz(0, lambda a: a.update(extra=np.zeros(3))), "extra: unknown array"),
    "wrong dtype": (edit_npz(1, lambda a: a.update(time=a["time"].astype(np.float64))),
                    "time: dtype float64: must be uint64"),
    "data dtype": (edit_npz(1, lambda a: a.update(data=a["data"].astype(np.uint32))),
                   "data: dtype uint32: must be uint16"),
    "wrong shape": (edit_npz(1, lambda a: a.update(data=a["data"].ravel())), "data: shape"),
    "wrong lanes": (edit_npz(1, lambda a: a.update(data=a["data"][:, :4])), "lanes=8"),
    "length mismatch": (edit_npz(2, lambda a: a.update(addr=a["addr"][:-1])), "addr: length"),
    "time order": (edit_npz(0, lambda a: _set(a, "time", 5, 0)), "time: must be non-decreasing"),
    "bad op": (edit_npz(0, lambda a: _set(a, "op", 3, 0)), "op: value 0"),
    "bad route": (edit_npz(0, lambda a: _set(a, "route", 3, 2)), "route: value 2"),
    "addr range": (edit_npz(0, lambda a: _set(a, "addr", 0, 10 ** 6)), "outside the output lines"),
    "line twice": (edit_npz(0, lambda a: _set(a, "addr", 1, a["addr"][0])), "stored 2 times"),
    "route vs map": (edit_npz(0, lambda a: _set(a, "route", _local_index(a), 1)),
                     "is TRACKED, so route must be 0"),
    "wf_id vs addr": (edit_npz(2, lambda a: _set(a, "wf_id", 4, a["wf_id"][4] ^ 1)), "wf_id: value"),
    "wg_id range": (edit_npz(2, lambda a: _set(a, "wg_id", 0, 999)), "wg_id: value 999"),
    "count vs header": (edit_header(lambda h: h["devices"][0].update(requests=7)), "the header says 7"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_loader_rejects(saved, kind):
    path, _ = saved
    mutate, expect = MALFORMED[kind]
    load_traces(path)                       # the unmodified directory loads
    mutate(path)
    with pytest.raises(ConfigError) as e:
        load_traces(path)
    msg = str(e.value)
    assert expect in msg, msg
    assert "\n" not in msg
    assert str(path) in msg                 # names the file


def test_at_least_ten_kinds():
    assert len(MALFORMED) >= 10
