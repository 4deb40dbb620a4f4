"""One serving replica over time: its queue, its paged KV cache and its iteration scheduler.

Schedulers (`SchedulerConfig.kind`):

- `static`: today's `tegel run`. A batch of up to max_seqs waiting requests is admitted only
  when the replica is empty, each holding its whole KV cache (prompt + output) from the start;
  one prefill iteration, then decode iterations until every sequence of the batch has finished.
- `continuous` (Orca; vLLM without chunking): requests join and leave at every iteration.
  Prefill first: when waiting prompts fit (max_seqs, max_batched_tokens, free KV blocks) they
  run as a prefill iteration and the running sequences wait; otherwise all running sequences
  decode one token.
- `chunked` (Sarathi-Serve; vLLM v1): every iteration carries all running decodes first, then
  prefill chunks — the oldest partly prefilled prompts, then new ones — up to the token budget.
- `disaggregated` (DistServe, Splitwise): replicas of a prefill pool run prefill-only
  iterations; replicas of a decode pool decode only. `simulate` moves the KV cache between them.

The KV cache is paged (vLLM): blocks of `block_tokens`, allocated for the prompt on admission
and one block at a time as a sequence grows. When a running sequence needs a block and none is
free, the latest admitted sequence is preempted by recompute: its blocks are freed and it goes
back to the head of the queue, to be prefilled again over its prompt and the tokens it already
generated (it keeps them; they are not emitted again). With `admission="reserve"` (TensorRT-LLM's
default GUARANTEED_NO_EVICT) a request is admitted only when blocks for its prompt and its whole
output are free, and nothing is ever preempted.

Prefix caching (`prefix_cache.py`; vLLM's automatic prefix caching, SGLang's RadixAttention):
when the workload says requests share a prompt prefix, its full blocks are kept once per replica
and reference-counted; a request whose prefix is cached prefills only the rest of its prompt, as
a chunk of (new tokens, cached tokens). Unreferenced cached prefixes are evicted least recently
used when blocks are needed; free blocks plus evictable ones are what admission may take.

Speculative decoding (`speculative_cost.SpeculativeRuntime`): every decode verifies k drafts,
running k + 1 tokens per sequence through the target (plus the drafter's k passes), and each
sequence advances by its own seeded accepted length + 1; finishing and KV-block growth follow each
sequence's stream, and the mean KV length priced grows by E per iteration.

Beam search (`beams` > 1, MLPerf GPT-J's 4; TensorRT-LLM's beam width): a request is prefilled
once and then decodes `beams` hypotheses a step, each a sequence of the iteration's batch, which
share its prompt's cache and keep their own generated tokens. Its KV cache is counted as its
prompt plus `beams` x its generated tokens, packed into blocks; a request emits one token a step
(the beams' step). Preemption recomputes the prompt and the generated tokens once.

Costs come from the `Oracle`; a replica keeps no cost formula.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tegel.errors import TegelError
from tegel.serving.oracle import Batch, IterationCost, Oracle
from tegel.serving.prefix_cache import PrefixCache

if TYPE_CHECKING:
    from tegel.serving.speculative_cost import SpeculativeRuntime

SCHEDULERS = ("static", "continuous", "chunked", "disaggregated")


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """How replicas batch. Defaults follow vLLM's engine arguments (max_num_seqs 256, block
    size 16; chunked prefill's budget 2,048 tokens, as Sarathi-Serve and vLLM's online default)."""

    kind: str = "continuous"
    max_seqs: int = 256  # sequences running at once per replica
    max_batched_tokens: int = 8192  # continuous: prompt tokens per prefill iteration
    chunk_tokens: int = 2048  # chunked: tokens per iteration (decodes + prefill chunks)
    block_tokens: int = 16  # KV-cache page size
    prefill_replicas: int | None = None  # disaggregated: replicas prefilling (None: half)
    router: str = "round-robin"  # or "least-loaded"
    admission: str = "on-demand"  # or "reserve" (blocks for prompt + output on admission)
    prefix_cache: bool = True  # keep shared prompt prefixes' KV once (when the workload has any)

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULERS:
            raise TegelError(f"scheduler: expected one of {', '.join(SCHEDULERS)}, got {self.kind!r}")
        if self.admission not in ("on-demand", "reserve"):
            raise TegelError(f"admission: expected 'on-demand' or 'reserve', got {self.admission!r}")
        if self.router not in ("round-robin", "least-loaded"):
            raise TegelError(f"router: expected 'round-robin' or 'least-loaded', got {self.router!r}")
        for name in ("max_seqs", "max_batched_tokens", "chunk_tokens", "block_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TegelError(f"{name}: expected a positive integer, got {value!r}")
        if self.prefill_replicas is not None and self.prefill_replicas < 1:
            raise TegelError(f"prefill_replicas: expected >= 1, got {self.prefill_replicas}")


class Records:
    """Per-request outcomes, indexed by request id (plain lists: cheap scalar access)."""

    def __init__(self, n: int) -> None:
        nan = math.nan
        self.first_s = [nan] * n  # when its first token was out
        self.finish_s = [nan] * n
        self.generated = [0] * n
        self.preemptions = [0] * n
        self.replica = [-1] * n
        self.dropped: dict[int, str] = {}
        self.prompt_tokens = 0  # prompt tokens of every prefill admission (recomputes too)
        self.cached_tokens = 0  # of which read from the prefix cache, not prefilled
        self.prefilled_tokens = 0  # prompt tokens run through prefill


@dataclass(slots=True)
class Iteration:
    """An iteration in flight: its batch, its cost and what it will complete."""

    batch: Batch
    cost: IterationCost
    prefills: list[tuple[int, int]]  # (request, tokens prefilled in this iteration)
    decodes: bool


class Replica:
    """A replica's state (module doc). `role`: "both", "prefill" or "decode"."""

    def __init__(self, index: int, oracle: Oracle, config: SchedulerConfig, kv_blocks: int,
                 inputs: list[int], outputs: list[int], records: Records, role: str = "both",
                 prefixes: tuple[list[int], list[int]] | None = None,
                 speculative: SpeculativeRuntime | None = None, beams: int = 1):
        self.index, self.oracle, self.cfg, self.role = index, oracle, config, role
        self.beams = beams  # hypotheses per request (module doc)
        self._inputs_running = 0  # the prompt tokens of the running requests
        self.inputs, self.outputs, self.rec = inputs, outputs, records
        self.kv_blocks = kv_blocks
        self.free = kv_blocks
        self.bs = config.block_tokens
        self.reserve = config.admission == "reserve"
        self.waiting: deque[int] = deque()
        self.prefilling: dict[int, int] = {}  # request -> prompt tokens prefilled so far
        self.running: dict[int, None] = {}  # decoding, in admission order
        self.blocks: dict[int, int] = {}
        self.step = 0  # decode iterations so far
        self._start: dict[int, tuple[int, int]] = {}  # request -> (step joined, gen then)
        self._cached0: float = 0  # sum over running of (cached tokens when joined - step joined)
        self._done: list[tuple[int, int]] = []  # (step it finishes, request)
        self._grow: list[tuple[int, int, int]] = []  # (step it needs a block, request, blocks)
        self.busy = False
        self.outstanding = 0  # requests routed here and not finished (least-loaded routing)
        self.peak_blocks = 0
        self.has_kv: set[int] = set()  # waiting requests whose cache arrived (decode pool)
        # prefix caching: (prefix id, prefix tokens) per request; None when off or unshared
        self.prefixes = prefixes
        self.cache = PrefixCache() if prefixes is not None else None
        self.shared: dict[int, int] = {}  # request -> its blocks held in the prefix cache
        self.hits: dict[int, int] = {}  # admitted, not yet prefilling -> prompt tokens cached
        self.spec = speculative
        self.q = 1 if speculative is None else speculative.new_tokens  # tokens per decode
        self.rate: float = 1 if speculative is None else speculative.tokens_per_step
        self._verifies: dict[int, int] = {}  # speculative: verifies a request has run so far
        self._finish_at: dict[int, int] = {}  # running request -> the step it finishes at

    # -- queue and KV cache --------------------------------------------------------------
    def prompt(self, r: int) -> int:
        """Tokens a prefill of `r` processes: its prompt and, after a preemption, what it had
        generated (recompute)."""
        return self.inputs[r] + self.rec.generated[r]

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.bs)

    def whole(self, r: int) -> int:
        """KV tokens `r` holds when it has generated all its output (module doc: its prompt and
        every beam's tokens)."""
        return self.inputs[r] + self.beams * self.outputs[r]

    def _take(self, r: int, blocks: int) -> None:
        self.free -= blocks
        self.blocks[r] = self.blocks.get(r, 0) + blocks
        self.peak_blocks = max(self.peak_blocks, self.kv_blocks - self.free)

    def release(self, r: int) -> None:
        self.free += self.blocks.pop(r, 0)
        if self.cache is not None:
            self.shared.pop(r, None)
            self.free += self.cache.release(r)

    def _room(self, need: int, keep: int = 0) -> bool:
        """Whether `need` blocks can be had, evicting unreferenced cached prefixes LRU for them
        (`keep`: evictable blocks that must stay, the entry about to be referenced)."""
        if need <= self.free:
            return True
        cache = self.cache
        return cache is not None and need <= self.free + cache.idle_blocks - keep

    def _evict_for(self, need: int) -> None:
        assert self.cache is not None
        while self.free < need:
            freed = self.cache.evict()
            if not freed:
                raise AssertionError("prefix cache: nothing left to evict")
            self.free += freed

    def _prefix(self, r: int) -> tuple[int, int, int, int]:
        """(prefix id, blocks read from its written entry, blocks for a new entry `r` writes,
        evictable blocks of the entry it would reference) for admitting `r` now."""
        if self.cache is None or self.prefixes is None:
            return -1, 0, 0, 0
        pid = self.prefixes[0][r]
        if pid < 0:
            return -1, 0, 0, 0
        usable = min(self.prefixes[1][r], self.prompt(r) - 1) // self.bs
        if usable < 1:
            return -1, 0, 0, 0
        entry = self.cache.lookup(pid)
        if entry is None:
            return pid, 0, usable, 0
        if not entry.ready:
            return -1, 0, 0, 0  # being written: prefill it privately (no sharing yet)
        return pid, min(entry.blocks, usable), 0, entry.blocks if entry.refs == 0 else 0

    def enqueue(self, r: int) -> None:
        self.waiting.append(r)

    def _leave(self, r: int) -> None:
        """Take a running request out of the decode set (finished or preempted)."""
        del self.running[r]
        self._inputs_running -= self.inputs[r]
        s0, g0 = self._start.pop(r)
        self.rec.generated[r] = min(self.outputs[r], g0 + self._emitted(r, self.step - s0))
        self._cached0 -= self.prompt_cached(r, s0, g0)
        del self._finish_at[r]
        if self.spec is not None:
            self._verifies[r] = self._verifies.get(r, 0) + self.step - s0
            self.spec.count(self.step - s0, self.rec.generated[r] - g0)

    def prompt_cached(self, r: int, s0: int, g0: int) -> float:
        """Tokens cached when `r` joined at step s0 having generated g0 (its prompt and all but
        the newest token), minus s0 (x E when speculating): + step (x E) gives what is cached
        at any later step (on average)."""
        return self.inputs[r] + g0 - 1 - self.rate * s0

    def _emitted(self, r: int, steps: int) -> int:
        """Tokens `r` emits in its first `steps` decode iterations since it last joined."""
        if self.spec is None:
            return steps
        return self.spec.emitted(r, self.outputs[r], self._verifies.get(r, 0), steps)

    def _steps_for(self, r: int, tokens: int) -> int:
        """Decode iterations `r` needs from its last join on to emit `tokens` tokens."""
        if self.spec is None:
            return tokens
        return self.spec.verifies_for(r, self.outputs[r], self._verifies.get(r, 0), tokens)

    def _block_due(self, r: int, held: int) -> int:
        """The step at which `r`, holding `held` blocks, needs one more: before the iteration
        whose tokens would not fit."""
        s0, g0 = self._start[r]
        if self.beams > 1:  # prompt + beams x generated, packed: every beam adds one a step
            return s0 + (held * self.bs - self.inputs[r]) // self.beams - g0 + 1
        cached = self.inputs[r] + g0 - 1  # the newest token is cached by its decode step
        return s0 + self._steps_for(r, held * self.bs - cached + 1) - 1

    def join(self, r: int) -> None:
        """Start decoding `r` (its prefill is done; it has generated >= 1 token)."""
        g0 = self.rec.generated[r]
        self.running[r] = None
        self._inputs_running += self.inputs[r]
        self._start[r] = (self.step, g0)
        self._cached0 += self.prompt_cached(r, self.step, g0)
        self._finish_at[r] = self.step + self._steps_for(r, self.outputs[r] - g0)
        heapq.heappush(self._done, (self._finish_at[r], r))
        have = self.blocks.get(r, 0)
        heapq.heappush(self._grow, (self._block_due(r, have + self.shared.get(r, 0)), r, have))

    def preempt_one(self) -> bool:
        """Free the latest admitted sequence's blocks (recompute); False if there is none."""
        if self.prefilling:
            r = next(reversed(self.prefilling))
            del self.prefilling[r]
        elif self.running:
            r = next(reversed(self.running))
            self._leave(r)
        else:
            return False
        self.release(r)
        self.rec.preemptions[r] += 1
        self.waiting.appendleft(r)
        return True

    def _grow_blocks(self) -> None:
        """Give every running sequence whose cache is full one more block, preempting the
        latest admitted ones while none is free."""
        grow = self._grow
        while grow and grow[0][0] <= self.step:
            _, r, have = heapq.heappop(grow)
            if r not in self.running or self.blocks.get(r, 0) != have:
                continue  # stale: finished, preempted or re-admitted since
            while not self._room(1):
                if not self.preempt_one():
                    raise AssertionError("a lone sequence outgrew the KV cache")
            if r not in self.running:
                continue  # it was the victim itself
            if self.cache is not None:
                self._evict_for(1)
            self._take(r, 1)
            due = (self.step + self.bs if self.spec is None and self.beams == 1
                   else self._block_due(r, have + 1 + self.shared.get(r, 0)))
            heapq.heappush(grow, (due, r, have + 1))

    # -- scheduling ----------------------------------------------------------------------
    def schedule(self) -> Iteration | None:
        """The next iteration, or None when there is nothing to do."""
        kind = self.cfg.kind
        if kind == "static":
            return self._static()
        if self.role == "prefill":
            return self._prefill_only()
        if self.running:
            self._grow_blocks()
        if self.role == "decode":
            self._admit_arrived()
            if self.waiting and self.waiting[0] not in self.has_kv:
                it = self._prefill_only()  # a preempted sequence recomputes its cache here
                if it is not None:
                    return it
            return self._decode() if self.running else None
        if kind == "chunked" and self.role == "both":
            return self._chunked()
        if self.role == "both":
            it = self._prefill_only()
            if it is not None:
                return it
        return self._decode() if self.running else None

    def _admit(self, whole: bool) -> int | None:
        """Admit the head of the queue if a sequence slot and the blocks of its prompt (with
        `whole`, of its prompt and all its output: a static batch) are free; its id or None."""
        if not self.waiting or len(self.running) + len(self.prefilling) >= self.cfg.max_seqs:
            return None
        r = self.waiting[0]
        need = self.blocks_for(self.whole(r) if whole else self.prompt(r))
        pid, hit, new, keep = self._prefix(r)
        if not self._room(need - hit, keep):
            return None
        self.waiting.popleft()
        if self.cache is not None:
            if hit:
                self.cache.acquire(r, pid)
            self._evict_for(need - hit)
            if new:
                self.cache.create(r, pid, new)
                self.shared[r] = new
            elif hit:
                self.shared[r] = hit
        self._take(r, need - hit)
        if new:
            self.blocks[r] -= new  # held by the cache entry, not privately
        self.hits[r] = hit * self.bs
        self.rec.prompt_tokens += self.prompt(r)
        self.rec.cached_tokens += hit * self.bs
        return r

    def _admit_arrived(self) -> None:
        """Decode pool: start decoding requests whose KV cache has arrived, while slots and
        blocks last (FCFS)."""
        while (self.waiting and self.waiting[0] in self.has_kv
               and len(self.running) + len(self.prefilling) < self.cfg.max_seqs):
            r = self.waiting[0]
            need = self.blocks_for(self.whole(r) if self.reserve else self.prompt(r) - 1)
            if not self._room(need):
                return
            if self.cache is not None:
                self._evict_for(need)
            self.waiting.popleft()
            self.has_kv.discard(r)
            self._take(r, need)
            self.join(r)

    def _static(self) -> Iteration | None:
        if self.running:
            return self._decode()
        prefills = []
        while (r := self._admit(whole=True)) is not None:
            prefills.append((r, self.prompt(r) - self.hits[r]))
        return self._prefill_iteration(prefills) if prefills else None

    def _prefill_only(self) -> Iteration | None:
        prefills: list[tuple[int, int]] = []
        budget = self.cfg.max_batched_tokens
        while (self.waiting and self.waiting[0] not in self.has_kv
               and (not prefills or self.prompt(self.waiting[0]) <= budget)):
            r = self._admit(whole=self.reserve)
            if r is None:
                break
            n = self.prompt(r) - self.hits[r]
            prefills.append((r, n))
            budget -= n
        return self._prefill_iteration(prefills) if prefills else None

    def _prefill_iteration(self, prefills: list[tuple[int, int]]) -> Iteration:
        chunks = []
        for r, n in prefills:
            k = self.hits.pop(r)
            self.prefilling[r] = k
            chunks.append((n, k))
        batch = Batch(0, 0.0, tuple(chunks), len(prefills))
        return Iteration(batch, self.oracle.cost(batch), prefills, False)

    def _decode_batch(self) -> tuple[int, float, float]:
        """(sequences decoding: the running requests' beams, their mean cached length, the
        mean prompt length their beams share)."""
        d = len(self.running)
        if not d:
            return 0, 0.0, 0.0
        past = (self._cached0 + d * self.rate * self.step) / d
        return d * self.beams, past, self._inputs_running / d

    def _cost(self, batch: Batch) -> IterationCost:
        """The oracle's cost of `batch`, with the drafter's passes when speculating."""
        cost = self.oracle.cost(batch)
        if self.spec is None:
            return cost
        return self.spec.with_drafts(cost, batch.decode, batch.decode_kv_tokens)

    def _decode(self) -> Iteration:
        d, past, shared = self._decode_batch()
        batch = Batch(d, past, (), d * self.q, self.q, shared)
        return Iteration(batch, self._cost(batch), [], True)

    def _chunked(self) -> Iteration | None:
        d, past, shared = self._decode_batch()
        budget = self.cfg.chunk_tokens - d * self.q
        prefills: list[tuple[int, int]] = []
        chunks: list[tuple[int, int]] = []
        emitting = d * self.q
        for r, done in list(self.prefilling.items()):
            if budget <= 0:
                break
            n = min(self.prompt(r) - done, budget)
            prefills.append((r, n))
            chunks.append((n, done))
            emitting += done + n == self.prompt(r)
            budget -= n
        while budget > 0 and (new := self._admit(whole=self.reserve)) is not None:
            k = self.hits.pop(new)
            n = min(self.prompt(new) - k, budget)
            self.prefilling[new] = k
            prefills.append((new, n))
            chunks.append((n, k))
            emitting += k + n == self.prompt(new)
            budget -= n
        if not d and not chunks:
            return None
        batch = Batch(d, past, tuple(chunks), emitting, self.q, shared)
        return Iteration(batch, self._cost(batch), prefills, d > 0)

    # -- completion ----------------------------------------------------------------------
    def complete(self, it: Iteration, now: float) -> tuple[list[int], list[int]]:
        """Apply a finished iteration at time `now`: (requests finished, requests whose prefill
        finished and that still have tokens to generate — the caller decides where they go)."""
        rec = self.rec
        finished: list[int] = []
        if it.decodes:
            self.step += 1
            done = self._done
            while done and done[0][0] <= self.step:
                _, r = heapq.heappop(done)
                if r in self.running and self._finish_at[r] == self.step:
                    self._leave(r)
                    rec.finish_s[r] = now
                    self.release(r)
                    finished.append(r)
        prefilled: list[int] = []
        for r, n in it.prefills:
            if r not in self.prefilling:
                continue  # preempted while in flight (cannot happen: preemption is between)
            rec.prefilled_tokens += n
            total = self.prefilling[r] + n
            if total < self.prompt(r):
                self.prefilling[r] = total
                continue
            del self.prefilling[r]
            if self.cache is not None:
                self.cache.written(r)
            if rec.generated[r] == 0:
                rec.first_s[r] = now
            rec.generated[r] += 1
            if rec.generated[r] >= self.outputs[r]:
                rec.finish_s[r] = now
                self.release(r)
                finished.append(r)
            else:
                prefilled.append(r)
        return finished, prefilled
