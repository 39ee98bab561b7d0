"""Stream rules of every block with stream ports, from ONE generic harness.

:class:`StreamRulesHarness` wraps any ``wiring.Component``: it copies the block's
signature (so every input port is a free top-level input the solver picks each cycle),
walks it for ``amaranth.lib.stream`` interfaces and

* assumes every INPUT stream obeys valid/ready: once ``valid`` is high and ``ready`` low,
  the next cycle ``valid`` is still high with the same payload;
* asserts every OUTPUT stream obeys the same rule;
* assumes the non-stream inputs named in ``stable`` (configuration registers) keep their
  first value; every other non-stream input (pulses, clears, status) is free every cycle;
* adds the block's input contract (``contract(m, dut)``: a list of Assume statements,
  e.g. the link's 1 <= num <= den) and assumes no reset after the start.

Nothing else is constrained: ready of an output and valid/payload of an input are free
within the rules. :class:`StallGlitch` is the deliberately broken variant: it wraps a
block and, on one output stream, drops ``valid`` (or flips a payload bit) in the second
cycle of a stall; :data:`MUTANTS` shows the harness catching it on three blocks, and
two design-method mutants (verif/formal/mutants.py) breaking a rule.

Reduced configuration (:data:`TINY`): 2 lanes of fp16 (line 4 B), 16 lines, 2 tracker
entries, 2-bit counts, 1-bit WF indices, 1 region, queues of 2.
"""

from __future__ import annotations

import itertools
from typing import Callable

from amaranth.hdl import Assert, Assume, Cover, Module, ResetSignal, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import Flow

from contract.spec import T3Config

__all__ = ["TINY", "stream_ports", "plain_inputs", "prop", "stream_rule", "pass_through",
           "block_rules", "StreamRulesHarness", "StallGlitch", "PROOFS", "MUTANTS", "SUITE_SKIP",
           "COVERS"]

#: the reduced configuration every harness of this package builds its blocks with
TINY = T3Config(dtype="fp16", line_bytes=4, mem_depth_lines=16, tracker_entries=2,
                ring_devices=2, link_latency_cycles=2, link_lines_per_cycle=0.5,
                fp_adder_stages=1, wf_outer_bits=1, wf_inner_bits=1, regions=1, count_bits=2,
                dma_queue_depth=2, mem_queue_depth=2, mca_queue_threshold=1,
                mca_starvation_limit=3, csr_addr_bits=9)


def stream_ports(component: wiring.Component):
    """``(path, flow, interface)`` of every stream interface in ``component``'s signature,
    arrays expanded (path like ``req[1]``); ``flow`` is In for a stream the block consumes."""

    def walk(obj, members, prefix: str):
        # `member.signature` of an In member is already flipped, so every flow below is
        # the component's own (no second flip)
        for name, member in members.items():
            for idx, item in zip(itertools.product(*(range(d) for d in member.dimensions)),
                                 _elements(getattr(obj, name), member)):
                path = prefix + name + "".join(f"[{i}]" for i in idx)
                if not member.is_signature:
                    continue
                if isinstance(member.signature, stream.Signature):
                    yield path, member.flow, item
                else:
                    yield from walk(item, member.signature.members, path + ".")

    yield from walk(component, component.signature.members, "")


def plain_inputs(component: wiring.Component):
    """``(name, signal)`` of the top-level non-interface input ports."""
    for name, member in component.signature.members.items():
        if member.flow == Flow.In and member.is_port:
            yield name, getattr(component, name)


def prop(m: Module, kind, cond, name: str) -> None:
    """``kind`` (Assert/Assume/Cover) of ``cond`` under the current If, through a signal
    named ``<kind>_<name>`` (init 1 for Assert/Assume) so a counterexample's VCD shows
    which property failed."""
    ok = Signal(name=f"{kind.__name__.lower()}_{name}", init=kind is not Cover)
    m.d.comb += [ok.eq(cond), kind(ok, name)]


def _held(m: Module, value, name: str) -> Signal:
    """``value`` registered (its value in the previous cycle)."""
    value = Value.cast(value)
    past = Signal(value.shape(), name=f"past_{name}")
    m.d.sync += past.eq(value)
    return past


def stream_rule(m: Module, s, name: str, started, *, check) -> None:
    """valid/ready rule on stream ``s``: a stalled transfer (valid & ~ready) is still
    valid with the same payload next cycle. ``check`` is Assume (input) or Assert (output)."""
    valid, ready, payload = s.valid, s.ready, Value.cast(s.payload)
    past_stalled = _held(m, valid & ~ready, f"{name}_stalled")
    past_payload = _held(m, payload, f"{name}_payload")
    with m.If(started & past_stalled):
        prop(m, check, valid & (payload == past_payload), f"rule_{name}")


def _mirror(component: wiring.Component) -> wiring.Signature:
    """A signature with the same members as ``component``'s (the harness's ports)."""
    return wiring.Signature(dict(component.signature.members.items()))


def pass_through(m: Module, inner: wiring.Component, outer: wiring.Component,
                 skip: str | None = None) -> None:
    """Connect every port of ``inner`` to the same-named port of ``outer`` (a component
    with the mirrored signature), except ``skip``."""
    for name, member in inner.signature.members.items():
        if name == skip:
            continue
        for a, b in zip(_elements(getattr(inner, name), member),
                        _elements(getattr(outer, name), member)):
            if member.is_signature:
                if member.flow == Flow.In:
                    wiring.connect(m, wiring.flipped(b), a)
                else:
                    wiring.connect(m, a, wiring.flipped(b))
            elif member.flow == Flow.In:
                m.d.comb += a.eq(b)
            else:
                m.d.comb += b.eq(a)


def _elements(obj, member):
    """The elements of a (possibly array) member's object, flattened."""
    for idx in itertools.product(*(range(d) for d in member.dimensions)):
        item = obj
        for i in idx:
            item = item[i]
        yield item


class StreamRulesHarness(wiring.Component):
    """The generic stream-rule harness (see the module doc). ``factory()`` builds the
    block; ``stable`` names its configuration inputs; ``contract(m, dut)`` returns extra
    Assume statements on its inputs."""

    def __init__(self, factory: Callable[[], wiring.Component], *, stable=(),
                 contract: Callable | None = None):
        self._dut = factory()
        names = {n for n, _ in plain_inputs(self._dut)}
        unknown = set(stable) - names
        if unknown:
            raise ValueError(f"StreamRulesHarness: stable={sorted(unknown)}: not plain inputs "
                             f"of {type(self._dut).__name__} (have {sorted(names)})")
        self._stable = tuple(stable)
        self._contract = contract
        super().__init__(_mirror(self._dut))

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        pass_through(m, dut, self)
        m.d.comb += Assume(~ResetSignal())
        started = Signal()
        m.d.sync += started.eq(1)
        for path, flow, s in stream_ports(dut):
            name = path.replace("[", "_").replace("]", "").replace(".", "_")
            stream_rule(m, s, name, started, check=Assume if flow == Flow.In else Assert)
            if flow == Flow.Out:
                # the rule is not vacuous: a stall of this output is reachable
                stalled_twice = _held(m, s.valid & ~s.ready, f"{name}_cov") & s.valid & ~s.ready
                prop(m, Cover, started & stalled_twice, f"stall_{name}")
        for name in self._stable:
            sig = Value.cast(getattr(dut, name))
            past = _held(m, sig, name)      # registered outside the If: every cycle
            with m.If(started):
                prop(m, Assume, sig == past, f"stable_{name}")
        if self._contract is not None:
            m.d.comb += self._contract(m, dut)
        return m


class StallGlitch(wiring.Component):
    """A broken variant of a block: on output stream ``port``, the second cycle of a
    stall drops ``valid`` (``kind="drop"``) or flips payload bit 0 (``kind="payload"``)."""

    def __init__(self, dut: wiring.Component, port: str, kind: str = "drop"):
        if kind not in ("drop", "payload"):
            raise ValueError(f"StallGlitch: kind={kind!r}: must be 'drop' or 'payload'")
        member = dut.signature.members.get(port)
        if member is None or member.flow != Flow.Out or member.dimensions \
                or not isinstance(member.signature, stream.Signature):
            raise ValueError(f"StallGlitch: port={port!r}: must be a single output stream of "
                             f"{type(dut).__name__}")
        self._dut, self._port, self._kind = dut, port, kind
        super().__init__(_mirror(dut))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = dut = self._dut
        pass_through(m, dut, self, skip=self._port)
        src, dst = getattr(dut, self._port), getattr(self, self._port)
        stalled = _held(m, src.valid & ~dst.ready, "glitch_stalled")
        payload = Value.cast(src.payload)
        if self._kind == "drop":
            m.d.comb += [dst.valid.eq(src.valid & ~stalled), Value.cast(dst.payload).eq(payload)]
        else:
            m.d.comb += [dst.valid.eq(src.valid), Value.cast(dst.payload).eq(payload ^ stalled)]
        m.d.comb += src.ready.eq(dst.ready & dst.valid)
        return m


# ---- the blocks ----------------------------------------------------------------------

def _link_contract(m, dut):
    """The link's documented range: latency >= 1, 1 <= num <= den."""
    return [Assume((dut.latency >= 1) & (dut.num >= 1) & (dut.num <= dut.den))]


def _blocks():
    """name -> (factory, stable inputs, contract, mode, depth)."""
    from hw.addrmap import AddressMap
    from hw.csr import Csr
    from hw.dma import DmaEngine
    from hw.layouts import link_packet
    from hw.env.link import LinkModel
    from hw.env.stall import StreamStall
    from hw.merge import StreamMerge
    from hw.nmc import ComputeMemory
    from hw.track_trigger import TrackTrigger
    from hw.tracker import TrackerTable
    cfg = TINY
    arb = ("policy", "threshold", "starve_limit")
    return {
        "addrmap": (lambda: AddressMap(cfg=cfg), ("regions",), None, "prove", 4),
        # with `clear_history` free: a pulse while a refire head is stalled once made
        # `mem.valid` drop (fixed in hw/tracker.py: refire_hold)
        # depth 8: the cover of a two-cycle `fire` stall is reached at step 7
        "tracker": (lambda: TrackerTable(cfg=cfg, history=2), ("regions",) + arb, None,
                    "prove", 8),
        "dma": (lambda: DmaEngine(cfg=cfg), ("regions",), None, "bmc", 20),
        "nmc": (lambda: ComputeMemory(cfg=cfg), (), None, "bmc", 20),
        "merge": (lambda cls=StreamMerge: cls(payload_shape=4, n=3), (), None, "prove", 4),
        "link": (lambda cls=LinkModel: cls(payload_shape=link_packet(cfg), depth=2,
                                           latency_bits=3, credit_bits=3),
                 ("latency", "num", "den"), _link_contract, "bmc", 24),
        "csr": (lambda: Csr(cfg=cfg), (), None, "prove", 5),     # cover reached at step 4
        # the test environment's random stall gate (hw/env/stall.py): a stall may delay
        # an offer, never withdraw one
        "stall": (lambda: StreamStall(payload_shape=4, index=0), (), None, "prove", 4),
        # CSR bus free (CTRL, CMD, regions, kicks at any time): the REMOTE packet's `dest`
        # once followed CTRL combinationally while stalled (fixed in hw/addrmap.py)
        "track_trigger": (lambda: TrackTrigger(cfg=cfg), (), None, "bmc", 11),  # cover: step 10
    }


def block_rules(block: str):
    """(stable inputs, contract) the stream proof of ``block`` assumes (reused by the
    block-specific harnesses)."""
    _, stable, contract, _, _ = _blocks()[block]
    return stable, contract


def _harness(block: str, wrap=None, cls=None):
    """Factory of the stream harness of ``block``: the block wrapped by ``wrap`` (e.g. a
    StallGlitch), or built as ``cls`` (a broken subclass; the block's factory takes it)."""
    def build():
        factory, stable, contract, _, _ = _blocks()[block]
        f = factory if cls is None else (lambda: factory(cls))
        g = f if wrap is None else (lambda: wrap(f()))
        return StreamRulesHarness(g, stable=stable, contract=contract)
    return build


def _proofs():
    proofs = [(f"streams_{name}", _harness(name), mode, depth)
              for name, (_, _, _, mode, depth) in _blocks().items()]
    # not vacuous: a two-cycle stall of every output stream is reachable, within the
    # depth of the block's check
    covers = [(f"streams_cover_{name}", _harness(name), "cover", depth)
              for name, (_, _, _, _, depth) in _blocks().items()]
    return proofs + covers


#: (name, harness factory, mode, depth)
PROOFS = _proofs()

#: cover -> the check it shows non-vacuous (the cover's depth is no greater)
COVERS = {f"streams_cover_{name}": f"streams_{name}" for name in _blocks()}

#: `make formal` only: the whole unit deeper
SUITE_SKIP = {"streams_track_trigger_deep"}
PROOFS.append(("streams_track_trigger_deep", _harness("track_trigger"), "bmc", 16))


def _mutants():
    """Broken variants that must FAIL the block's stream check, at its mode and depth:
    a stalled output that drops valid / changes payload (StallGlitch), and the
    design-method mutants of verif/formal/mutants.py that break a stream rule."""
    from .mutants import LinkDropsUnderBackpressure, MergeDropsGrant
    return [
        ("streams_mutant_merge_drop", _harness("merge", lambda d: StallGlitch(d, "o", "drop")),
         "streams_merge", "rule_o"),
        ("streams_mutant_nmc_payload",
         _harness("nmc", lambda d: StallGlitch(d, "resp", "payload")), "streams_nmc",
         "rule_resp"),
        ("streams_mutant_tracker_drop",
         _harness("tracker", lambda d: StallGlitch(d, "mem", "drop")), "streams_tracker",
         "rule_mem"),
        ("streams_mutant_merge_grant", _harness("merge", cls=MergeDropsGrant), "streams_merge",
         "rule_o"),
        ("streams_mutant_link_drop", _harness("link", cls=LinkDropsUnderBackpressure),
         "streams_link", "rule_rx"),
    ]


#: (name, harness factory, the proof it breaks, the assertion that must fail)
MUTANTS = _mutants()
