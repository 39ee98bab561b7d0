"""The track & trigger register bus from cocotb: a thin bus model on the stream drivers of
verif/streams.py (a request :class:`~verif.streams.StreamSource`, an on-demand response
:class:`~verif.streams.StreamSink`), and device programming from a
:class:`contract.program.DeviceProgram` (the writes come from
:func:`contract.regmap.program_writes`: one source for the register map)."""

from __future__ import annotations

from contract import regmap
from contract.program import DeviceProgram
from contract.spec import T3Config

from .streams import ClockDomain, StreamSink, StreamSource, Struct

__all__ = ["CsrMaster", "arbiter_settings"]


#: the registers that configure the memory-controller arbiter
ARBITER_REGISTERS = ("ARB", "ARB_AUTO")


def arbiter_settings(cfg: T3Config) -> dict[str, dict[str, int]]:
    """Per register of :data:`ARBITER_REGISTERS`, the fields that configure ``cfg``'s
    memory-controller arbiter (``arbiter_policy``, ``mca_queue_threshold``,
    ``mca_starvation_limit``, ``mca_window_log2``): the registers' reset values under
    ``cfg`` (contract.regmap, the one encoding)."""
    out = {}
    for name in ARBITER_REGISTERS:
        r = regmap.reg(cfg, name)
        out[name] = regmap.decode(r, r.reset)
    return out


class CsrMaster:
    """Bus master of one register bus: one access at a time on ``<req>`` (address, write
    flag, write data), its response taken on ``<resp>``. The response stream is ready only
    from the edge that took the request until the response arrived."""

    def __init__(self, clock: ClockDomain, dut, cfg: T3Config, *, req: str = "csr_req",
                 resp: str = "csr_resp"):
        self.cfg = cfg
        self._req = Struct(regmap.csr_request_fields(cfg))
        self._resp = Struct(regmap.csr_response_fields(cfg))
        self.resp = StreamSink(clock, dut, resp, on_demand=True)
        self.req = StreamSource(clock, dut, req, on_accept=lambda _word, _cycle: self.resp.expect(1))
        self._busy = False

    async def _access(self, addr: int, write: bool, wdata: int = 0) -> int:
        if self._busy:
            raise RuntimeError(f"{self.req.name}: one register access at a time (two "
                               "coroutines share this bus)")
        self._busy = True
        try:
            self.req.send_nowait(self._req.pack(addr=addr, write=int(write), wdata=wdata))
            return self._resp.get(await self.resp.recv(), "rdata")
        finally:
            self._busy = False

    async def write(self, addr: int, value: int) -> None:
        await self._access(addr, True, value)

    async def read(self, addr: int) -> int:
        return await self._access(addr, False)

    async def read_fields(self, name: str) -> dict[str, int]:
        """Read register ``name`` and split it into its fields."""
        r = regmap.reg(self.cfg, name)
        return regmap.decode(r, await self.read(r.addr))

    async def write_fields(self, name: str, **fields: int) -> None:
        r = regmap.reg(self.cfg, name)
        f = {x.name: x for x in r.fields}
        await self.write(r.addr, sum(int(v) << f[k].lsb for k, v in fields.items()))

    async def program(self, prog: DeviceProgram, *, enable: bool = True) -> None:
        for addr, value in regmap.program_writes(self.cfg, prog, enable=enable):
            await self.write(addr, value)

    async def program_arbiter(self, cfg: T3Config | None = None) -> dict[str, int]:
        """Write ARB with the arbiter settings of ``cfg`` (default: the bus's
        configuration; :func:`arbiter_settings`), read it back and return the read-back
        fields; AssertionError when they differ from what was written. A build's reset
        value is only the policy it was generated with: a run that needs a given policy
        writes it."""
        want = arbiter_settings(cfg or self.cfg)
        got = {}
        for name, fields in want.items():
            await self.write_fields(name, **fields)
            got[name] = await self.read_fields(name)
        assert got == want, f"{self.req.name}: arbiter registers read back {got} after writing {want}"
        return {k: v for fields in got.values() for k, v in fields.items()}
