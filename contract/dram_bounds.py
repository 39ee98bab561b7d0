"""Sizes and guarantees of the DRAM memory controller derived from its timing.

Shared by the RTL (:class:`hw.dram.DramController`), its cycle model
(:mod:`sim_models.dram`), the formal harness (verif/formal/dram.py) and docs/memory.md:

* :func:`return_slots` -- lines of the READ return buffer;
* :func:`urgent_service_bound` / :func:`starvation_bound` -- the no-starvation guarantee
  of the age cap: every accepted request issues its column command at most
  :func:`starvation_bound` cycles after the cycle it was accepted, provided the response
  sink takes every READ response when it is presented (``resp.ready`` high).

Derivation (docs/memory.md, "Starvation bound"). Let ``U`` bound the cycles from the
first cycle ``u`` the oldest waiting request ``h`` is urgent to its column command (both
rules of the age cap hold from ``u`` on: no other request of its bank issues a column
command; its row command goes first when its timing allows; once its row is open,
another bank's column command issues only if no constraint it starts on ``h`` ends later
than the cycle ``h``'s own constraints already allow it):

* a row conflict: no column command reaches ``h``'s bank after ``u``, so its PRE issues
  at most ``P = max(tRAS, tRTP, tCWL + 1 + tWR, t_rmw + tWR) - 1`` cycles after ``u``;
* the closed bank may be activated ``tRP`` cycles after its PRE. From then on another
  bank can activate before ``h`` only while ``h`` waits for tRRD_L alone (any other
  constraint left is global and would hold the other bank too), so the last ACT of
  ``h``'s group is older than that cycle, and ``h``'s ACT follows within
  ``tRRD_L - 1 + F`` cycles, ``F = max(0, tRRD_S - 1, tFAW - 3 tRRD_S - 1)`` (tRRD_S
  and the four-ACT window from ACTs at least tRRD_S apart);
* from the cycle ``w`` after the ACT (or ``u`` for a row hit) the column commands of
  other banks never move ``h``'s earliest cycle: it is set by commands before ``w`` (tRCD, tRCD_WR,
  tCCD_L, t_rmw, the write-to-read turnaround, tRTW), and a READ's return slot frees
  once the oldest unanswered READ (issued before ``w``) has left: ``C = max(tRCD,
  tRCD_WR, tCCD_L, t_rmw, tCWL + 1 + tWTR_L, tRTW, tCL + 2) - 1`` cycles after ``w``.

So ``U = P + tRP + tRRD_L + F + C``. A request accepted in cycle ``a`` has at most
``Q - 1`` older waiting requests; each is urgent by ``a + age_cap`` at the latest and
issues within ``U`` of becoming the oldest-and-urgent one, and the next one is urgent the
cycle after, so the request issues by ``a + age_cap + (Q - 1)(U + 1) + U``:
``B = age_cap + Q (U + 1) - 1``.
"""

from __future__ import annotations

from .dram import DramTiming

__all__ = ["return_slots", "urgent_service_bound", "starvation_bound"]


def return_slots(timing: DramTiming, queue_depth: int) -> int:
    """Lines of the READ return buffer: the next power of two that holds a full queue of
    READs plus the READs a queue's worth of issue can have in flight (so the buffer never
    limits a stream of READs whose responses are taken at once)."""
    need = queue_depth + timing.read_latency + 1
    return 1 << (need - 1).bit_length()


def urgent_service_bound(timing: DramTiming) -> int:
    """``U``: cycles from the first cycle the oldest request is urgent to its column
    command, at most (module doc)."""
    t = timing
    pre = max(t.t_ras, t.t_rtp, t.write_to_precharge, t.update_to_precharge) - 1
    act = t.t_rrd_l + max(0, t.t_rrd_s - 1, t.t_faw - 3 * t.t_rrd_s - 1)
    col = max(t.t_rcd, t.t_rcd_wr, t.t_ccd_l, t.t_rmw, t.write_to_read_same, t.t_rtw,
              t.read_latency + 1) - 1
    return pre + t.t_rp + act + col


def starvation_bound(timing: DramTiming, queue_depth: int) -> int:
    """``B``: cycles from a request's acceptance to its column command, at most, with the
    response sink always ready: ``age_cap + queue_depth * (U + 1) - 1`` (module doc)."""
    return timing.age_cap + queue_depth * (urgent_service_bound(timing) + 1) - 1
