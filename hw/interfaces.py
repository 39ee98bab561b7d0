"""The port pairs more than one block of the T3 unit has, as ``wiring.Signature`` classes.

Every pair here is a request stream and the response stream that answers it, in
request order (:class:`RequestResponse`): the register bus (:class:`CsrBus`) and the
memory port (:class:`MemoryPort`). Streams follow :mod:`amaranth.lib.stream` rules (a
presented payload is held until ``ready``).

Direction convention: a signature is written from the **initiator**'s side, the block
that issues requests: ``req`` is ``Out`` and ``resp`` is ``In``. The **target** takes
the flipped signature: ``In(CsrBus(cfg=cfg))`` as a member, ``CsrBus(cfg=cfg).flip()`` as
a value. So an initiator member connects to a target member with ``wiring.connect``
directly, and a component passing its own port down uses ``wiring.flipped``.

Top-level port names are an external interface: the Verilog testbenches bind the
flattened names of ``TrackTrigger``, ``T3Unit`` and ``T3Ring`` (``csr_req__valid``,
``host_resp__0__ready``), and a nested member would flatten to ``csr__req__valid``. Those
tops therefore list the pair's two streams as separate members under their established
names, taken from the signature (``bus.members["req"]``), and :meth:`RequestResponse.view`
joins the two back into one interface of the pair for ``connect``. Blocks whose ports no
testbench binds (``Csr``, ``DmaEngine``) have the pair as one nested member.

Where each is used: ``CsrBus``: ``Csr.bus`` (target), ``TrackTrigger``/``T3Unit``
``csr_req``/``csr_resp`` (target), ``T3Ring`` ``csr_req[i]``/``csr_resp[i]`` (target).
``MemoryPort``: ``DmaEngine.mem`` (initiator), ``TrackTrigger`` ``mem``/``mem_resp``
(initiator), ``T3Unit`` ``host``/``host_resp`` (target), ``T3Ring``
``host[i]``/``host_resp[i]`` (target).
"""

from __future__ import annotations

from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from contract.spec import T3Config

from . import layouts
from .component import check_cfg

__all__ = ["RequestResponse", "CsrBus", "MemoryPort"]


class RequestResponse(wiring.Signature):
    """A request stream and the stream of its responses, in request order (initiator's
    side; the target uses the flipped signature).

    Parameters
    ----------
    request : shape-like
        Payload of the request stream.
    response : shape-like
        Payload of the response stream.

    Members
    -------
    req : Out(stream.Signature(request))
        Requests, issued by the initiator.
    resp : In(stream.Signature(response))
        Responses, issued by the target in the order of the requests they answer.
    """

    def __init__(self, request, response):
        super().__init__({"req": Out(stream.Signature(request)),
                          "resp": In(stream.Signature(response))})

    def __eq__(self, other):
        return type(self) is type(other) and self.members == other.members

    def view(self, *, req, resp) -> "_PairView":
        """The stream interfaces ``req`` and ``resp`` (two members of a top that lists the
        pair separately, under its testbench port names) as one interface with this
        signature, for ``wiring.connect``. Called on the flipped signature for a
        target's pair."""
        return _PairView(self, req=req, resp=resp)


class _PairView:
    """Two existing stream interfaces seen as one interface of a pair signature."""

    def __init__(self, signature: wiring.Signature, *, req, resp):
        self.signature = signature
        self.req = req
        self.resp = resp


class CsrBus(RequestResponse):
    """The register bus of the track & trigger unit (docs/regmap.md), bus master's side.

    One response per request, in order; word addresses; a read of an unmapped address
    returns 0, a write to one is ignored.

    Parameters
    ----------
    cfg : T3Config
        Address and data widths (``csr_addr_bits``, ``csr_data_bits``).

    Members
    -------
    req : Out(stream.Signature(layouts.csr_request(cfg)))
        ``{addr, write, wdata}``: read (``write`` = 0) or write the word at ``addr``.
    resp : In(stream.Signature(layouts.csr_response(cfg)))
        ``{rdata}``: the word read, 0 for a write.
    """

    def __init__(self, *, cfg: T3Config):
        check_cfg("CsrBus", cfg)
        super().__init__(layouts.csr_request(cfg), layouts.csr_response(cfg))


class MemoryPort(RequestResponse):
    """A port into the compute-enhanced memory, requester's side.

    Parameters
    ----------
    cfg : T3Config
        Line, lane and address widths.

    Members
    -------
    req : Out(stream.Signature(layouts.memory_request(cfg)))
        ``{op, addr, mask, data}`` (:func:`hw.layouts.memory_request`): READ, STORE or
        UPDATE of one line; STORE/UPDATE change the lanes whose ``mask`` bit is set.
    resp : In(stream.Signature(layouts.memory_response(cfg)))
        ``{data}``: one line per READ, in request order; STORE and UPDATE get none.
    """

    def __init__(self, *, cfg: T3Config):
        check_cfg("MemoryPort", cfg)
        super().__init__(layouts.memory_request(cfg), layouts.memory_response(cfg))
