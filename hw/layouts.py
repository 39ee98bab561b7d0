"""Amaranth layouts and enums built from :mod:`contract.spec` (one source).

The contract defines every encoding as a plain Python ``IntEnum`` (it imports no HDL);
here each becomes an :mod:`amaranth.lib.enum` enum with its contract width as the shape,
so a payload field holding an opcode is typed (``payload.op == Op.UPDATE``) instead of a
bare 2-bit value. Member names and values are copied from the contract, never restated.
"""

from amaranth.lib import data, enum

from contract import spec

from .component import check_cfg  # noqa: F401  (re-exported: the blocks' cfg check)


def hw_enum(source: type, bits: int) -> type:
    """An :class:`amaranth.lib.enum.Enum` with ``source``'s members and ``bits`` as shape."""
    meta = enum.EnumType
    ns = meta.__prepare__(source.__name__, (enum.Enum,), shape=bits)
    for member in source:
        ns[member.name] = member.value
    ns["__doc__"] = source.__doc__
    ns["__module__"] = __name__
    return meta(source.__name__, (enum.Enum,), ns, shape=bits)


#: memory request opcode (contract.spec.Op), OP_BITS wide
Op = hw_enum(spec.Op, spec.OP_BITS)
#: what a fired tile sends (contract.spec.FireOp), FIRE_OP_BITS wide
FireOp = hw_enum(spec.FireOp, spec.FIRE_OP_BITS)
#: what the address map does with a producer request (contract.spec.ProducerAction)
ProducerAction = hw_enum(spec.ProducerAction, spec.PRODUCER_ACTION_BITS)


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
