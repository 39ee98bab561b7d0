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
