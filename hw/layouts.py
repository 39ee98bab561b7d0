"""Amaranth layouts and enums built from :mod:`contract.spec` (one source).

The contract defines every encoding as a plain Python ``IntEnum`` (it imports no HDL);
here each becomes an :mod:`amaranth.lib.enum` enum with its contract width as the shape,
so a payload field holding an opcode is typed (``payload.op == Op.UPDATE``) instead of a
bare 2-bit value. Member names and values are copied from the contract, never restated.

Field lists (names, order, widths) come from the contract too; the layouts below only
add structure the contract's flat lists cannot express: the enum type of the encoded
fields (:func:`struct`, by field name) and the memory request nested in a tracked
request.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Shape, Value
from amaranth.lib import data, enum

from contract import errors, regmap, spec

__all__ = ["Op", "FireOp", "ProducerAction", "hw_enum", "fire_packet_op", "struct",
           "producer_request", "memory_request", "memory_response", "link_packet",
           "tracked_request", "fire_layout", "region_layout", "regions_layout",
           "csr_request", "csr_response", "error_flags"]


def hw_enum(source: type, bits: int) -> type:
    """An Amaranth enum with ``source``'s members and ``bits`` as shape.

    In HDL a field of this type is an :class:`amaranth.lib.enum.EnumView`: it compares
    only with members of this enum (``view == Op.UPDATE``; comparing it with a plain
    integer or a ``contract.spec`` member is a TypeError, which catches a field compared
    with the wrong encoding). The members themselves are an ``IntEnum`` like the
    contract's, so the values the simulator returns for such a field compare equal to
    the contract's members and to plain integers (the tests check outputs against
    ``contract.spec.Op`` values)."""
    meta = enum.EnumType
    ns = meta.__prepare__(source.__name__, (enum.IntEnum,), shape=bits,
                          view_class=enum.EnumView)
    for member in source:
        ns[member.name] = member.value
    ns["__doc__"] = source.__doc__
    ns["__module__"] = __name__
    return meta(source.__name__, (enum.IntEnum,), ns, shape=bits, view_class=enum.EnumView)


#: memory request opcode (contract.spec.Op), OP_BITS wide
Op = hw_enum(spec.Op, spec.OP_BITS)
#: what a fired tile sends (contract.spec.FireOp), FIRE_OP_BITS wide
FireOp = hw_enum(spec.FireOp, spec.FIRE_OP_BITS)
#: what the address map does with a producer request (contract.spec.ProducerAction)
ProducerAction = hw_enum(spec.ProducerAction, spec.PRODUCER_ACTION_BITS)


def fire_packet_op(fire) -> Value:
    """The :class:`Op` (a view) of the packets a tile fired with ``fire`` (a
    :class:`FireOp` value) sends: :data:`contract.spec.FIRE_OP_TO_OP` as a mux chain.

    A fire op the table does not map gives the table's last entry (STORE): FireOp.NONE
    sends nothing (the DMA engine never issues it) and the unused encoding 3 sends
    STOREs, as the engine always did."""
    *rest, (_, last_op) = spec.FIRE_OP_TO_OP.items()
    op = Value.cast(Op(last_op))
    for fire_op, packet_op in rest:
        op = Mux(fire == FireOp(fire_op), Op(packet_op), op)
    return Op(op)


#: the enum of each encoded field, by field name (the contract gives only its width)
_ENCODED = {"op": Op, "producer": ProducerAction, "update_fire": FireOp, "store_fire": FireOp}


def struct(fields: spec.Fields) -> data.StructLayout:
    """``fields`` (a contract field list, LSB first) as a StructLayout; a field whose name
    is an encoding (``op``, ``producer``, ``update_fire``, ``store_fire``) gets that
    enum as its shape, which must be as wide as the contract says."""
    members = {}
    for name, width in fields:
        shape = _ENCODED.get(name, width)
        if Shape.cast(shape).width != width:
            raise ValueError(f"struct: field {name!r}: {shape.__name__} is "
                             f"{Shape.cast(shape).width} bits, the contract gives {width}")
        members[name] = shape
    return data.StructLayout(members)


def producer_request(cfg: spec.T3Config) -> data.StructLayout:
    """A line from the GPU (the producer): {op, addr, wf_id, data}."""
    return struct(spec.producer_request_fields(cfg))


def memory_request(cfg: spec.T3Config) -> data.StructLayout:
    """A request into the compute-enhanced memory: {op, addr, mask, data}."""
    return struct(spec.memory_request_fields(cfg))


def memory_response(cfg: spec.T3Config) -> data.StructLayout:
    """The line a READ returns: {data}."""
    return struct(spec.memory_response_fields(cfg))


def link_packet(cfg: spec.T3Config) -> data.StructLayout:
    """One line on the ring link: {op, dest, addr, wf_id, data}."""
    return struct(spec.link_packet_fields(cfg))


def tracked_request(cfg: spec.T3Config) -> data.StructLayout:
    """A memory request after the address map: {mem, wf_id, region, phase, tracked}.

    ``mem`` is the :func:`memory_request` itself, so it is handed to memory whole
    (``out.eq(req.mem)``); the other fields are what the tracker counts it by. The bits
    are those of :func:`contract.spec.tracked_request_fields` (the memory request's
    fields first), which the flat testbench packing uses."""
    mem_fields = spec.memory_request_fields(cfg)
    fields = spec.tracked_request_fields(cfg)
    if fields[:len(mem_fields)] != mem_fields:
        raise ValueError("tracked_request: contract.spec.tracked_request_fields no longer "
                         "starts with the memory request's fields")
    tracking = struct(fields[len(mem_fields):])
    return data.StructLayout({"mem": memory_request(cfg),
                              **{name: field.shape for name, field in tracking}})


def fire_layout(cfg: spec.T3Config) -> data.StructLayout:
    """A fired tile for the DMA engine: {wf_id, region, phase, whole}."""
    return struct(spec.fire_fields(cfg))


def region_layout(cfg: spec.T3Config) -> data.StructLayout:
    """One programmed region as the hardware holds it (contract.spec.region_fields)."""
    return struct(spec.region_fields(cfg))


def regions_layout(cfg: spec.T3Config) -> data.ArrayLayout:
    """Every region of the device (the CSR block's ``regions`` output)."""
    return data.ArrayLayout(region_layout(cfg), cfg.regions)


def csr_request(cfg: spec.T3Config) -> data.StructLayout:
    """One register-bus request: {addr, write, wdata} (contract.regmap)."""
    return struct(regmap.csr_request_fields(cfg))


def csr_response(cfg: spec.T3Config) -> data.StructLayout:
    """One register-bus response: {rdata}."""
    return struct(regmap.csr_response_fields(cfg))


def error_flags(block: str) -> data.StructLayout:
    """The sticky error flags ``block`` raises (:func:`contract.errors.flags_of`), one bit
    each in register order: the layout of that block's ``err`` and ``clear`` ports."""
    return data.StructLayout({name: 1 for name in errors.flags_of(block)})
