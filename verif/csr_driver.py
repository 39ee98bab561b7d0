"""Drive the track & trigger register bus from cocotb, and program a device from its
:class:`contract.program.DeviceProgram` (the writes come from
:func:`contract.regmap.program_writes`: one source for the register map)."""

from __future__ import annotations

from contract import regmap
from contract.program import DeviceProgram
from contract.spec import T3Config

from .streams import Struct

__all__ = ["CsrDriver"]


class CsrDriver:
    """One request at a time on ``<req>__valid/ready/payload``; waits for the response on
    ``<resp>__valid/ready/payload``. ``cycles`` counts bus cycles spent."""

    def __init__(self, dut, clk, cfg: T3Config, *, req: str = "csr_req", resp: str = "csr_resp"):
        from cocotb.triggers import RisingEdge
        self.cfg = cfg
        self._edge = RisingEdge(clk)
        self.req_valid, self.req_ready = getattr(dut, f"{req}__valid"), getattr(dut, f"{req}__ready")
        self.req_payload = getattr(dut, f"{req}__payload")
        self.resp_valid, self.resp_ready = getattr(dut, f"{resp}__valid"), getattr(dut, f"{resp}__ready")
        self.resp_payload = getattr(dut, f"{resp}__payload")
        self._req = Struct(regmap.csr_request_fields(cfg))
        self._resp = Struct(regmap.csr_response_fields(cfg))
        self.req_valid.value = 0
        self.resp_ready.value = 0
        self.cycles = 0

    async def _access(self, addr: int, write: bool, wdata: int = 0) -> int:
        self.req_payload.value = self._req.pack(addr=addr, write=int(write), wdata=wdata)
        self.req_valid.value = 1
        while True:
            await self._edge
            self.cycles += 1
            if int(self.req_ready.value):
                break
        self.req_valid.value = 0
        self.resp_ready.value = 1
        while True:
            await self._edge
            self.cycles += 1
            if int(self.resp_valid.value):
                break
        self.resp_ready.value = 0
        return self._resp.get(self.resp_payload.value.to_unsigned(), "rdata")

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
