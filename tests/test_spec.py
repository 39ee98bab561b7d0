"""The spec: defaults from the paper, derived widths, and one-line errors naming the field."""

import pytest

from contract.spec import (ConfigError, FORMATS, T3Config, fields_width, link_packet_fields,
                             load_config, memory_request_fields)


def test_paper_defaults():
    cfg = T3Config()
    assert cfg.tracker_entries == 256
    assert cfg.dtype == "fp16"
    assert cfg.link_latency_cycles == round(500e-9 * 1.4e9)
    assert cfg.link_credit_ratio == (3, 20)


@pytest.mark.parametrize("dtype,lanes", [("fp16", 32), ("bf16", 32), ("fp32", 16)])
def test_derived_widths(dtype, lanes):
    cfg = T3Config(dtype=dtype)
    assert cfg.lanes == lanes
    assert cfg.line_bits == 512
    assert cfg.addr_bits == 14
    w = fields_width(memory_request_fields(cfg))
    assert w == 2 + 14 + lanes + 512
    assert fields_width(link_packet_fields(cfg)) == 2 + 2 + 14 + 16 + 512


@pytest.mark.parametrize("name,bits", [("fp16", 0x7E00), ("bf16", 0x7FC0), ("fp32", 0x7FC00000)])
def test_canonical_nan(name, bits):
    assert FORMATS[name].canonical_nan == bits
    assert FORMATS[name].is_nan(bits)


@pytest.mark.parametrize("kw,field", [
    (dict(dtype="fp8"), "dtype"), (dict(line_bytes=48), "line_bytes"),
    (dict(line_bytes=2), "line_bytes"), (dict(tracker_entries=0), "tracker_entries"),
    (dict(ring_devices=1), "ring_devices"), (dict(link_lines_per_cycle=1.5), "link_lines_per_cycle"),
    (dict(arbiter_policy="lru"), "arbiter_policy"), (dict(mem_depth_lines="big"), "mem_depth_lines"),
    (dict(mca_queue_threshold=99), "mca_queue_threshold"), (dict(fp_adder_stages=True), "fp_adder_stages"),
])
def test_invalid_values_name_the_field(kw, field):
    with pytest.raises(ConfigError) as e:
        T3Config(**kw)
    msg = str(e.value)
    assert "\n" not in msg and f"{field}=" in msg


def test_lanes_key_and_unknown_key(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[t3]\ndtype = 'bf16'\nlanes = 32\ntracker_entries = 128\n")
    cfg = load_config(f)
    assert (cfg.line_bytes, cfg.tracker_entries) == (64, 128)
    f.write_text("[t3]\ntrackers = 3\n")
    with pytest.raises(ConfigError, match=r"c.toml: trackers=3: unknown key"):
        load_config(f)
    f.write_text("[t3]\nlanes = 32\nline_bytes = 32\n")
    with pytest.raises(ConfigError, match="disagrees"):
        load_config(f)
    f.write_text("[t3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(f)


def test_tracker_cache_geometry():
    """The tracker table is tracker_entries / tracker_ways sets (one fully associative
    set when there are fewer entries than ways); the backing store holds one counter per
    phase per line of memory unless tracker_counters says otherwise."""
    cfg = T3Config()
    assert (cfg.tracker_ways, cfg.tracker_sets, cfg.tracker_assoc) == (4, 64, 4)
    assert cfg.tracker_counters == 0 and cfg.tracker_counter_slots == 2 * 16384
    assert cfg.tracker_counter_index_bits == 15
    small = T3Config(tracker_entries=2, mem_depth_lines=1000)
    assert (small.tracker_sets, small.tracker_assoc) == (1, 2)
    assert small.tracker_counter_slots == 2048               # 2 x 2**addr_bits
    odd = T3Config(tracker_entries=40, tracker_counters=64)
    assert (odd.tracker_sets, odd.tracker_counter_slots, odd.tracker_counter_index_bits) == (10, 64, 6)


@pytest.mark.parametrize("kw,msg", [
    (dict(tracker_ways=0), r"^config: tracker_ways=0: must be an integer in \[1, 16\]$"),
    (dict(tracker_ways=17), r"^config: tracker_ways=17: must be an integer in \[1, 16\]$"),
    (dict(tracker_entries=38), r"^config: tracker_entries=38: must be a multiple of "
                               r"tracker_ways=4 \(or at most tracker_ways: one fully "
                               r"associative set\)$"),
    (dict(tracker_counters=3), r"^config: tracker_counters=3: must be 0 \(one per phase per "
                               r"memory line\) or a power of two >= 2$"),
    (dict(tracker_counters=1), r"tracker_counters=1: must be 0"),
    (dict(tracker_counters=-2), r"tracker_counters=-2: must be an integer in \[0, 33554432\]"),
    (dict(tracker_counters=True), r"tracker_counters=True: must be an integer"),
])
def test_tracker_cache_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        T3Config(**kw)


def test_tracker_counters_must_cover_the_output():
    """contract.sizing: an explicit backing store must hold 2 counters per line of the
    output (checked, one-line error); config_for grows it; 0 (one per line of memory)
    always fits."""
    from contract.gemm import GemmSpec
    from contract.sizing import check_config, config_for
    g = GemmSpec(m=128, n=128, k=64, devices=4)        # 512 lines of 64 B fp16
    with pytest.raises(ConfigError, match=r"^config: tracker_counters=64: the output occupies "
                                          r"lines up to 511, whose tiles need 1024 backing "
                                          r"counters"):
        check_config(T3Config(tracker_counters=64, ring_devices=4), g)
    assert config_for(g, T3Config(tracker_counters=64)).tracker_counters == 1024
    assert config_for(g).tracker_counters == 0
    check_config(config_for(g, T3Config(tracker_counters=64)), g)
