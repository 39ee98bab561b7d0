"""Amaranth layouts built from the field lists of :mod:`sim_models.spec` (one source)."""

from amaranth.lib import data

from sim_models import spec


def check_cfg(who: str, cfg) -> spec.T3Config:
    """Every block's ``cfg`` argument check (one message for all of them)."""
    if not isinstance(cfg, spec.T3Config):
        raise spec.ConfigError(f"{who}: cfg={cfg!r}: must be a sim_models.spec.T3Config")
    return cfg


def struct(fields: spec.Fields) -> data.StructLayout:
    return data.StructLayout({name: width for name, width in fields})


def producer_request(cfg: spec.T3Config) -> data.StructLayout:
    return struct(spec.producer_request_fields(cfg))


def memory_request(cfg: spec.T3Config) -> data.StructLayout:
    return struct(spec.memory_request_fields(cfg))


def memory_response(cfg: spec.T3Config) -> data.StructLayout:
    return struct(spec.memory_response_fields(cfg))


def link_packet(cfg: spec.T3Config) -> data.StructLayout:
    return struct(spec.link_packet_fields(cfg))
