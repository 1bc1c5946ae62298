"""One runner shared by several engines, so that the objects of several videos go through the
network in the same calls.

Each engine runs in its own thread with a *member* of a :class:`SharedRunner` as its runner.
The members take turns: exactly one thread at a time runs (holds the turn), so the engines'
host work, CUDA launches and graph captures never interleave. A member that asks to segment
deposits its crops and hands the turn on; when every member in the group has deposited (or
left), the deposits run as one batch (packed into calls of at most ``max_batch`` rows, a
deposit never split), each member gets its own rows back, and the turns start again in the
members' order.

With ``seats`` (N), the members are N threads that each take a numbered seat: turns begin
once all N have joined, the order is the seats', and a member leaves only for good. Then
everything happens in one fixed order (a thread that picks its next video during its turn
picks the same one every run): a rerun makes the same calls. Without seats, members join
and leave as they come, in the order they come (e.g. a Ray actor's concurrent calls), and
the batches depend on that timing.

What a member gives back is what its runner gives (logits on the device, asynchronous on a
GPU); only the batch composition differs from a lone engine's, so results are equal up to
float rounding (the same as for the objects of one video batched together). Each member
copies to and from the device through its own pinned buffers (:class:`~.transfer.Transfers`),
since a pinned buffer is reused once its copy is done, not once its reader has read it.
"""
from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator

import torch
from torch import Tensor

from ..model import ReferenceEncoding
from .protocol import Runner
from .transfer import HostCopy, Transfers

_READY, _WAITING, _GONE = "ready", "waiting", "gone"
#: concatenated reference sets kept for reuse while the group stays the same (one per call of a round)
REFERENCE_SETS = 4


class SharedMember:
    """A :class:`~.protocol.Runner` for one engine of a :class:`SharedRunner`'s group.

    Use it only in the thread that got it from :meth:`SharedRunner.turn`, inside that block.
    """

    def __init__(self, shared: "SharedRunner", seat: int | None = None):
        inner = shared.runner
        self.seat = seat
        self.backend, self.device, self.precision = inner.backend, inner.device, inner.precision
        self.device_geometry, self.graphs = inner.device_geometry, inner.graphs
        self._shared = shared
        self._wake = threading.Condition(shared._lock)  # only this member is woken for its turn
        self._transfers = Transfers(inner.device)
        self._state = _READY
        self._request: tuple[ReferenceEncoding, Tensor, Tensor] | None = None
        self._result: Tensor | BaseException | None = None

    def encode_reference(self, images: Tensor, masks: Tensor) -> ReferenceEncoding:
        self._shared._check_turn(self)
        return self._shared.runner.encode_reference(images, masks)

    def segment(self, ref: ReferenceEncoding, images: Tensor, masks: Tensor) -> Tensor:
        return self._shared._segment(self, ref, images, masks)

    def to_device(self, t: Tensor) -> Tensor:
        return self._transfers.to_device(t)

    def to_host(self, tensors: list[Tensor]) -> HostCopy:
        return self._transfers.to_host(tensors)


class SharedRunner:
    """``runner`` shared by engines in several threads, their segment calls batched together
    (see the module docstring). ``max_batch``: at most this many rows per network call.

    ``stats`` counts 'rounds' (times the group's deposits ran), 'calls' (network calls) and
    'rows' (objects segmented).
    """

    def __init__(self, runner: Runner, max_batch: int = 16, seats: int | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if seats is not None and seats < 1:
            raise ValueError(f"seats must be at least 1, not {seats}")
        self.runner = runner
        self.max_batch = max_batch
        self.seats = seats
        self._started = False  # with seats: every seat has been taken once
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._members: list[SharedMember] = []  # in the order they joined
        self._holder: SharedMember | None = None
        self._refs: dict[tuple[int, ...], tuple[tuple[ReferenceEncoding, ...], ReferenceEncoding]] = {}

    @contextlib.contextmanager
    def turn(self, seat: int | None = None) -> Iterator[SharedMember]:
        """Join the group: wait for a turn, run the block as a member (a runner for one
        engine), leave at its end, even on an error. ``seat``: this thread's seat number
        (0 to seats - 1), when the group has seats."""
        member = SharedMember(self, seat)
        device = self.runner.device
        if device.type == "cuda" and device.index is not None:
            torch.cuda.set_device(device)  # the current device is per thread (torchrun ranks set theirs)
        with self._lock:
            if self.seats is None:
                if seat is not None:
                    raise ValueError("this shared runner has no seats")
                self._members.append(member)
                if self._holder is None:
                    self._holder = member
            else:
                if self._started or seat is None or not 0 <= seat < self.seats or \
                        any(m.seat == seat for m in self._members):
                    raise ValueError(f"seat {seat} is not free (seats 0 to {self.seats - 1}, each taken once)")
                self._members.append(member)
                self._members.sort(key=lambda m: m.seat)
                if len(self._members) == self.seats:  # everyone is here: the first seat begins
                    self._started = True
                    self._hand_to(self._members[0])
            member._wake.wait_for(lambda: self._holder is member)
        try:
            yield member
        finally:
            with self._lock:
                member._state = _GONE
                self._members.remove(member)
                self._refs.clear()  # the group changed: no kept set is used again
                self._pass_on(member)

    # -- with the lock held -----------------------------------------------------------------
    def _check_turn(self, member: SharedMember) -> None:
        if self._holder is not member:
            raise RuntimeError("a shared runner's member was used outside its turn (or after leaving)")

    def _segment(self, member: SharedMember, ref: ReferenceEncoding, images: Tensor, masks: Tensor) -> Tensor:
        with self._lock:
            self._check_turn(member)
            member._request, member._state = (ref, images, masks), _WAITING
            self._pass_on(member)
            member._wake.wait_for(lambda: self._holder is member)
            result, member._result = member._result, None
        if isinstance(result, BaseException):
            raise result
        return result

    def _pass_on(self, current: SharedMember) -> None:
        """``current`` stops running: the turn goes to the next ready member after it in
        joining order; when none is ready, the group's deposits run (here, in ``current``'s
        thread) and the turns start again from the first member."""
        members = self._members
        start = members.index(current) + 1 if current in members else 0
        for member in members[start:] + members[:start]:
            if member._state == _READY:
                self._hand_to(member)
                return
        waiting = [m for m in members if m._state == _WAITING]
        if waiting:
            with torch.inference_mode():  # also when a member leaving runs the round
                self._run_round(waiting)
            self._hand_to(waiting[0])
        else:
            self._holder = None

    def _hand_to(self, member: SharedMember) -> None:
        """Give ``member`` the turn and wake its thread alone (a handoff costs the same
        however many members wait)."""
        self._holder = member
        member._wake.notify()

    def _run_round(self, waiting: list[SharedMember]) -> None:
        """Run every deposit, packed in order into calls of at most ``max_batch`` rows."""
        self.stats["rounds"] += 1
        calls: list[list[SharedMember]] = [[]]
        rows = 0
        for member in waiting:
            n = member._request[1].shape[0]
            if calls[-1] and rows + n > self.max_batch:
                calls.append([])
                rows = 0
            calls[-1].append(member)
            rows += n
        for group in calls:
            try:
                logits = self._call(group)
            except BaseException as exc:  # the members in this call raise it, in their own threads
                for member in group:
                    member._result = exc
            else:
                for member, part in zip(group, logits.split([m._request[1].shape[0] for m in group])):
                    member._result = part
        for member in waiting:
            member._request, member._state = None, _READY

    def _call(self, group: list[SharedMember]) -> Tensor:
        requests = [m._request for m in group]
        if len(requests) == 1:
            ref, images, masks = requests[0]
        else:
            ref = self._references(tuple(r[0] for r in requests))
            images = torch.cat([r[1] for r in requests])
            masks = torch.cat([r[2] for r in requests])
        self.stats["calls"] += 1
        self.stats["rows"] += images.shape[0]
        return self.runner.segment(ref, images, masks)

    def _references(self, refs: tuple[ReferenceEncoding, ...]) -> ReferenceEncoding:
        """The references of one call as one batch, concatenated once per set of members'
        references (a few sets are kept: a round may make several calls)."""
        key = tuple(id(r) for r in refs)
        entry = self._refs.get(key)
        if entry is None:
            if len(self._refs) >= REFERENCE_SETS:
                self._refs.pop(next(iter(self._refs)))
            entry = self._refs[key] = (refs, ReferenceEncoding.cat(list(refs)))  # holds refs: ids stay theirs
        return entry[1]
