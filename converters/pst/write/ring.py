"""Shared memory between the PST writer and its translating child (convert.py): a job's
bytes go into a slot of it and the child's answer comes back in the same slot, instead of
both crossing a pipe.

Through the pipes, each message's bytes were copied into the kernel and out again both
ways (the raw mail in, its MAPI form, about 1.5 times as large, out): at 20,000 bench
messages the three threads that only moved bytes through pipes took 3.5 s of CPU, mostly
system time, 14 % of the writer's whole CPU. Into and out of a shared mapping it is one
copy each way. Only the bytes move this way; which job a slot holds and when it is
answered still go through the pipes, which are the ordering (a pipe's write and read are
the barrier that makes the slot's bytes visible to the other process).

`Ring` is the allocator (pure): slots are handed out and given back first in, first
out, as jobs are sent and answered in order. `Shared` is the memory itself (I/O): an
anonymous memfd, inherited by the child by descriptor, gone when both have closed it.
"""

from __future__ import annotations

import mmap
import os
from collections import deque

#: the shared memory's size. Both processes touch all of it, and the benchmark's tree RSS
#: counts it in each; slots of `slot_size` hold the jobs the child may have waiting
#: (convert.AHEAD_BYTES of raw mail) with their answers
SIZE = 12 << 20
#: a job larger than this goes through the pipe as before: one such job would hold most
#: of the memory while the next ones wait behind it
MAX_JOB = 4 << 20


def slot_size(raw_size: int) -> int:
    """Room for a job and its answer: a MAPI answer is about 1.6 times the mail
    (median of the bench mailbox; UTF-16 bodies and header block; at most 2.7 in 400
    messages). An answer that does not fit comes back through the pipe."""
    return (2 * raw_size + 16383) // 4096 * 4096


class Ring:
    """Slots of a buffer of `size` bytes, taken and given back in the same order."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._slots: deque[tuple[int, int]] = deque()  # (start, end), oldest first

    def take(self, n: int) -> int | None:
        """The start of a free run of `n` bytes after the newest slot (or from the start
        of the buffer when there is no room before its end), or None when there is none."""
        if n <= 0 or n > self.size:
            return None
        if not self._slots:
            start = 0
        else:
            oldest, newest_end = self._slots[0][0], self._slots[-1][1]
            wrapped = self._slots[-1][0] < oldest  # the newest slots are before the oldest
            if wrapped:
                start = newest_end if newest_end + n <= oldest else -1
            elif newest_end + n <= self.size:
                start = newest_end
            else:
                start = 0 if n <= oldest else -1
            if start < 0:
                return None
        self._slots.append((start, start + n))
        return start

    def give_back(self, start: int) -> None:
        """Free the oldest slot, which must start at `start`."""
        if not self._slots or self._slots[0][0] != start:
            raise ValueError("slots are given back in the order they were taken")
        self._slots.popleft()

    @property
    def taken(self) -> int:
        return sum(end - start for start, end in self._slots)


class Shared:
    """An anonymous shared mapping of `size` bytes and its descriptor (for the child)."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        self.mem = mmap.mmap(fd, size)

    @classmethod
    def create(cls, size: int = SIZE) -> Shared | None:
        """A new one, or None where there is no memfd (not Linux): then the pipes carry
        everything, as before."""
        if not hasattr(os, "memfd_create"):
            return None
        try:
            fd = os.memfd_create("pstkit-pst-writer", os.MFD_CLOEXEC)
        except OSError:
            return None
        try:
            os.ftruncate(fd, size)
            return cls(fd, size)
        except (OSError, ValueError):
            os.close(fd)
            return None

    def close(self) -> None:
        self.mem.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
