import { DeadlineIndex } from './deadline-index.js';
import { PRIORITIES, type FullPolicy, type Priority } from '../domain/types.js';
import { LinkedFifo } from './linked-fifo.js';
import type {
  FullQueueDecision,
  FullQueuePolicy,
  FullQueueView,
  QueueEnd,
  RefusalReason,
} from './policies/full-queue-policy.js';
import { FULL_QUEUE_POLICIES } from './policies/registry.js';
import type { QueueEntry } from './queue-entry.js';

export type { QueueEntry } from './queue-entry.js';

export type { RefusalReason } from './policies/full-queue-policy.js';

/** What the queue needs to know about an entry. */

/** `wfq`: weighted fair queuing across classes and tenants; `fifo`: plain arrival order. */
export type SchedulingMode = 'wfq' | 'fifo';

export interface PoolQueueOptions {
  readonly capacity: number;
  readonly priorityCapacity: Readonly<Record<Priority, number>>;
  /** The built-in full-queue policy, and the label metrics and errors carry. */
  readonly fullPolicy: FullPolicy;
  /** A policy (a plugin) that decides instead of the built-in `fullPolicy` names. */
  readonly fullQueuePolicy?: FullQueuePolicy;
  /** Weights of the priority classes. */
  readonly weights: Readonly<Record<Priority, number>>;
  /** Weight of a tenant within a class (default 1). */
  readonly tenantWeight?: (tenant: string) => number;
  readonly mode?: SchedulingMode;
  /**
   * How far (in tokens of weight-1 service) a tenant may be served ahead of its fair turn so an
   * earlier deadline goes first (EDF within fairness limits). 0 disables deadline ordering.
   */
  readonly deadlineSlackTokens?: number;
  /**
   * Entries that cannot meet their deadline any more; evicted first when the queue must shed
   * work (ETA-aware eviction).
   */
  readonly doomed?: (entry: QueueEntry) => boolean;
}

export type OfferResult<T> =
  | { readonly kind: 'enqueued'; readonly position: number; readonly evicted: readonly T[] }
  | { readonly kind: 'refused'; readonly reason: RefusalReason };

/** What an offer would do, decided before anything is removed: admit after evicting, or refuse. */
export type OfferPlan<T> = AdmitPlan<T> | { readonly kind: 'refused'; readonly reason: RefusalReason };
export interface AdmitPlan<T> {
  readonly kind: 'admit';
  readonly evict: readonly T[];
}

/** The common plan (room left), shared so an admission that fits allocates nothing for it. */
const ADMIT_AS_IS: AdmitPlan<never> = Object.freeze({ kind: 'admit', evict: Object.freeze([]) });

interface Item<T> {
  readonly entry: T;
  /** Arrival order across the whole queue. */
  readonly seq: number;
}

interface Flow<T> {
  readonly tenant: string;
  readonly fifo: LinkedFifo<Item<T>>;
  /** Sum of the queued entries' costs (position estimates without a scan). */
  cost: number;
  /** Start-time fair queuing tag: virtual service this tenant has received in its class. */
  tag: number;
}

interface Tier<T> {
  readonly flows: Map<string, Flow<T>>;
  size: number;
  /** Stride pass of the class across classes. */
  pass: number;
  /** Virtual time inside the class: the tag of the last flow served. */
  vtime: number;
}

const rank = (p: Priority): number => PRIORITIES.indexOf(p);

/**
 * One pool's bounded queue (SPEC §3.1–§3.4): a FIFO per (class, tenant), a full-queue policy
 * (./policies) consulted before anything is evicted, and dispatch by weighted fair queuing —
 * stride scheduling across priority classes and start-time fair queuing across tenants inside a
 * class, both charged in tokens — with earliest-deadline-first among tenants whose fair tags are
 * within `deadlineSlackTokens`. `fifo` mode serves plain arrival order (the benchmark baseline).
 * Everything is pure: no clock, no I/O.
 */
export class PoolQueue<T extends QueueEntry> {
  readonly #o: PoolQueueOptions;
  readonly #policy: FullQueuePolicy;
  readonly #tiers = new Map<Priority, Tier<T>>(
    PRIORITIES.map((p) => [p, { flows: new Map(), size: 0, pass: 0, vtime: 0 }]),
  );
  readonly #where = new Map<string, { priority: Priority; tenant: string }>();
  #seq = 0;
  readonly #deadlines = new DeadlineIndex();
  #maxCost = 0;
  #classVirtualTime = 0;
  #totalCost = 0;

  constructor(opts: PoolQueueOptions) {
    this.#o = opts;
    this.#policy = opts.fullQueuePolicy ?? FULL_QUEUE_POLICIES[opts.fullPolicy];
  }

  get size(): number {
    return this.#where.size;
  }

  /** Sum of the queued entries' costs. */
  get totalCost(): number {
    return this.#totalCost;
  }

  get capacity(): number {
    return this.#o.capacity;
  }

  get fullPolicy(): FullPolicy {
    return this.#o.fullPolicy;
  }

  get mode(): SchedulingMode {
    return this.#o.mode ?? 'wfq';
  }

  sizeOf(p: Priority): number {
    return this.#tier(p).size;
  }

  /** Sum of the costs queued in class `p`. */
  costOf(p: Priority): number {
    let c = 0;
    for (const f of this.#tier(p).flows.values()) c += f.cost;
    return c;
  }

  has(id: string): boolean {
    return this.#where.has(id);
  }

  get(id: string): T | undefined {
    const at = this.#where.get(id);
    return at && this.#tier(at.priority).flows.get(at.tenant)?.fifo.get(id)?.entry;
  }

  /**
   * Admit `entry` under the full-queue policy, evicting other entries when the policy says so:
   * {@link planOffer} then {@link commitOffer}, so a refusal changes nothing.
   */
  offer(entry: T): OfferResult<T> {
    const plan = this.planOffer(entry);
    if (plan.kind === 'refused') return plan;
    return { kind: 'enqueued', ...this.commitOffer(entry, plan) };
  }

  /**
   * What offering `entry` would do, changing nothing: evictions must wait until admission is
   * certain (SPEC §17), and later admission steps may still refuse. `freed` are ids the caller
   * removes before the arrival goes in (soft-preemption victims): they count as free room and are
   * never chosen again. One victim at most per step, as the policy is asked at most twice, so
   * this costs what the policy's reads cost, nothing when there is room.
   */
  planOffer(entry: T, freed?: ReadonlySet<string>): OfferPlan<T> {
    const classCap = this.#o.priorityCapacity[entry.priority];
    if (!freed?.size && this.#tier(entry.priority).size < classCap && this.size < this.#o.capacity)
      return ADMIT_AS_IS;
    const view = new PlanView(this.#tiers, this.#o, this.size);
    if (freed)
      for (const id of freed) {
        const e = this.get(id);
        if (e) view.leave(e);
      }
    const evict: T[] = [];
    if (view.sizeOf(entry.priority) >= classCap) {
      const d = this.#policy.whenClassFull(entry, view);
      if (d.kind === 'refuse') return { kind: 'refused', reason: d.reason };
      this.#checkVictim(d, entry, view, 'class');
      view.leave(d.victim);
      evict.push(d.victim);
    }
    if (view.size >= this.#o.capacity) {
      const d = this.#policy.whenQueueFull(entry, view);
      if (d.kind === 'refuse') return { kind: 'refused', reason: d.reason };
      this.#checkVictim(d, entry, view, 'queue');
      evict.push(d.victim);
    }
    return evict.length === 0 ? ADMIT_AS_IS : { kind: 'admit', evict };
  }

  /**
   * Carry out an admit plan from {@link planOffer} with the same `freed`: remove `freed` and the
   * planned victims, queue `entry`. A plan holds only until the queue next changes; a stale one
   * (a victim no longer queued) or an arrival already queued throws before anything changes.
   */
  commitOffer(
    entry: T,
    plan: AdmitPlan<T>,
    freed?: ReadonlySet<string>,
  ): { readonly position: number; readonly evicted: readonly T[] } {
    for (const v of plan.evict)
      if (this.get(v.id) !== v || freed?.has(v.id))
        throw new Error(`stale offer plan: ${v.id} is no longer queued, or is among the freed`);
    if (this.#where.has(entry.id) && !freed?.has(entry.id)) throw new Error(`${entry.id} is already queued`);
    if (freed) for (const id of freed) this.remove(id);
    for (const v of plan.evict) this.remove(v.id);
    this.#push(entry);
    return { position: this.positionOf(entry.id) ?? 0, evicted: plan.evict };
  }

  /** The queue, not the policy, guarantees SPEC §3.2: a plugin cannot evict what it may not. */
  #checkVictim(
    d: Extract<FullQueueDecision<T>, { kind: 'evict' }>,
    arrival: T,
    view: PlanView<T>,
    step: 'class' | 'queue',
  ): void {
    const v = d.victim;
    const why =
      this.get(v.id) !== v || view.leaving(v.id)
        ? 'an entry that is not queued or already leaving'
        : step === 'class' && v.priority !== arrival.priority
          ? "an entry outside the arrival's class"
          : rank(v.priority) < rank(arrival.priority)
            ? 'an entry of a higher class than the arrival'
            : undefined;
    if (why !== undefined) throw new Error(`full-queue policy '${this.#policy.name}' chose ${why} (${v.id})`);
  }

  #push(entry: T, seq = this.#seq++, front = false): void {
    const tier = this.#tier(entry.priority);
    if (tier.size === 0) {
      // A class returning from idle must not bank credit from the time it was empty.
      tier.pass = Math.max(tier.pass, this.#classVirtualTime);
    }
    let flow = tier.flows.get(entry.tenant);
    if (!flow) {
      flow = { tenant: entry.tenant, fifo: new LinkedFifo(), cost: 0, tag: tier.vtime };
      tier.flows.set(entry.tenant, flow);
    } else if (flow.fifo.size === 0) {
      flow.tag = Math.max(flow.tag, tier.vtime);
    }
    if (front) flow.fifo.unshift(entry.id, { entry, seq });
    else flow.fifo.push(entry.id, { entry, seq });
    flow.cost += Math.max(1, entry.cost);
    this.#totalCost += Math.max(1, entry.cost);
    tier.size++;
    this.#where.set(entry.id, { priority: entry.priority, tenant: entry.tenant });
    this.#deadlines.add(entry.id, entry.deadlineAtMs);
    this.#maxCost = Math.max(this.#maxCost, entry.cost);
    // Dispatched entries leave dead slots behind; rebuild before they dominate.
    if (this.#deadlines.size > 2 * this.#where.size + 1024)
      this.#deadlines.compact((id) => this.#where.has(id));
  }

  /** Queued entries whose deadline is at or before `atMs` (cheap when few are due). */
  dueBy(atMs: number): T[] {
    return this.#deadlines
      .dueBy(atMs, (id) => this.#where.has(id))
      .flatMap((id) => {
        const e = this.get(id);
        return e === undefined ? [] : [e];
      });
  }

  /** The largest cost ever queued: an upper bound for deadline horizons. */
  get maxCost(): number {
    return this.#maxCost;
  }

  /**
   * Puts back an entry that was dispatched and then preempted: at the head of its flow, beyond
   * capacity if need be (an accepted task is never lost), keeping its class and tenant credit.
   */
  requeueFront(entry: T): void {
    this.#push(entry, -1 - this.#seq++, true);
  }

  /**
   * Takes in an entry accepted by another queue of the same replica set (its member was drained
   * or lost): at the tail, beyond capacity if need be, since an accepted task is never lost.
   */
  adopt(entry: T): void {
    if (this.#where.has(entry.id)) throw new Error(`${entry.id} is already queued`);
    this.#push(entry);
  }

  /**
   * Up to `count` queued entries of classes strictly below `p`, lowest class first, oldest first:
   * the ones fairness would serve soonest, so the ones soft preemption evicts (SPEC §3.5). Reads
   * only: the caller passes their ids as `freed` to {@link planOffer}/{@link commitOffer}, which
   * remove them once the urgent arrival is certain to be admitted.
   */
  softPreemptionVictims(p: Priority, count: number): T[] {
    const out: T[] = [];
    for (const q of [...PRIORITIES].reverse()) {
      if (rank(q) <= rank(p) || out.length >= count) break;
      const all = [...this.#tier(q).flows.values()].flatMap((f) => [...f.fifo.values()]);
      all.sort((a, b) => a.seq - b.seq);
      for (const item of all.slice(0, count - out.length)) out.push(item.entry);
    }
    return out;
  }

  /** {@link softPreemptionVictims} under its former name; it never removed anything either. */
  lowerPriorityOldestFirst(p: Priority, count: number): T[] {
    return this.softPreemptionVictims(p, count);
  }

  /**
   * Entries dispatched before `id`, estimated in O(flows): its own flow ahead of it, plus what
   * fairness interleaves from other tenants of its class and from other classes.
   */
  positionOf(id: string): number | undefined {
    const at = this.#where.get(id);
    if (!at) return undefined;
    const tier = this.#tier(at.priority);
    const flow = tier.flows.get(at.tenant);
    if (!flow) return undefined;
    const me = flow.fifo.get(id);
    if (!me) return undefined;
    if (this.mode === 'fifo') {
      let ahead = 0;
      for (const t of this.#tiers.values())
        for (const f of t.flows.values()) for (const e of f.fifo.values()) if (e.seq < me.seq) ahead++;
      return ahead;
    }
    let ahead = 0;
    let costAhead = 0;
    if (flow.fifo.peekLast() === me) {
      // The common case (a new arrival): no scan.
      ahead = flow.fifo.size - 1;
      costAhead = flow.cost - Math.max(1, me.entry.cost);
    } else {
      for (const e of flow.fifo.values()) {
        if (e === me) break;
        ahead++;
        costAhead += Math.max(1, e.entry.cost);
      }
    }
    // Virtual service my flow needs before me (and me), in its tenant weight.
    const myWeight = this.#tenantWeight(at.tenant);
    const myFinish = flow.tag + (costAhead + Math.max(1, me.entry.cost)) / myWeight;
    let others = 0;
    for (const f of tier.flows.values()) {
      if (f === flow || f.fifo.size === 0 || f.tag >= myFinish) continue;
      // Entries of another tenant whose fair tags start before mine finishes: the whole flow when
      // it fits, else estimated from its mean entry cost. O(1) per flow, so an arrival costs
      // O(flows) however deep the queue is.
      const w = this.#tenantWeight(f.tenant);
      if (f.tag + f.cost / w <= myFinish) others += f.fifo.size;
      else others += Math.min(f.fifo.size, Math.ceil(((myFinish - f.tag) * w) / (f.cost / f.fifo.size)));
    }
    const inClass = ahead + others;
    const w = this.#o.weights[at.priority];
    let otherClasses = 0;
    for (const q of PRIORITIES) {
      if (q === at.priority) continue;
      const share = Math.floor(((inClass + 1) * this.#o.weights[q]) / w);
      otherClasses += Math.min(this.#tier(q).size, share);
    }
    return inClass + otherClasses;
  }

  remove(id: string): T | undefined {
    const at = this.#where.get(id);
    if (!at) return undefined;
    const tier = this.#tier(at.priority);
    const flow = tier.flows.get(at.tenant);
    const v = flow?.fifo.remove(id);
    if (!v || !flow) return undefined;
    this.#where.delete(id);
    tier.size--;
    flow.cost -= Math.max(1, v.entry.cost);
    this.#totalCost -= Math.max(1, v.entry.cost);
    // An idle flow with no credit left is forgotten; one served ahead keeps its tag.
    if (flow.fifo.size === 0 && flow.tag <= tier.vtime) tier.flows.delete(at.tenant);
    return v.entry;
  }

  /**
   * The entry the scheduler serves next, without removing it. With `skip`, a tenant's class whose
   * next entry it names is passed over (its order is kept: nothing of that tenant and class behind
   * the entry is served either), e.g. a task a placement filter keeps off the free replicas.
   */
  peekNext(skip?: (entry: T) => boolean): T | undefined {
    return this.#pick(skip)?.item.entry;
  }

  /** Remove and return the entry the scheduler serves next, charging its class and tenant. */
  takeNext(skip?: (entry: T) => boolean): T | undefined {
    const pick = this.#pick(skip);
    if (!pick) return undefined;
    const { tier, flow } = pick;
    const entry = pick.item.entry;
    const cost = Math.max(1, entry.cost);
    this.#classVirtualTime = tier.pass;
    tier.pass += cost / this.#o.weights[entry.priority];
    tier.vtime = Math.max(tier.vtime, flow.tag);
    flow.tag += cost / this.#tenantWeight(flow.tenant);
    return this.remove(entry.id);
  }

  *entries(): IterableIterator<T> {
    for (const t of this.#tiers.values())
      for (const f of t.flows.values()) for (const item of f.fifo.values()) yield item.entry;
  }

  #pick(skip?: (entry: T) => boolean): { tier: Tier<T>; flow: Flow<T>; item: Item<T> } | undefined {
    if (this.mode === 'fifo') return this.#oldestHead(skip);
    const eligible = (f: Flow<T>): boolean => {
      const head = f.fifo.peekFirst();
      return head !== undefined && (skip === undefined || !skip(head.entry));
    };
    let tierKey: Priority | undefined;
    for (const p of PRIORITIES) {
      const t = this.#tier(p);
      if (t.size === 0) continue;
      if (skip !== undefined && ![...t.flows.values()].some(eligible)) continue;
      // Ties go to the higher class (PRIORITIES is ordered highest first).
      if (tierKey === undefined || t.pass < this.#tier(tierKey).pass) tierKey = p;
    }
    if (tierKey === undefined) return undefined;
    const tier = this.#tier(tierKey);
    let minTag = Number.POSITIVE_INFINITY;
    for (const f of tier.flows.values()) if (eligible(f)) minTag = Math.min(minTag, f.tag);
    const slack = this.#o.deadlineSlackTokens ?? 0;
    let best: { flow: Flow<T>; item: Item<T> } | undefined;
    for (const flow of tier.flows.values()) {
      const head = flow.fifo.peekFirst();
      if (!head || !eligible(flow) || flow.tag > minTag + slack) continue;
      if (best === undefined || before(flow, head, best.flow, best.item, slack > 0))
        best = { flow, item: head };
    }
    return best && { tier, ...best };
  }

  #oldestHead(skip?: (entry: T) => boolean): { tier: Tier<T>; flow: Flow<T>; item: Item<T> } | undefined {
    let best: { tier: Tier<T>; flow: Flow<T>; item: Item<T> } | undefined;
    for (const tier of this.#tiers.values())
      for (const flow of tier.flows.values()) {
        const head = flow.fifo.peekFirst();
        if (head && skip?.(head.entry) === true) continue;
        if (head && (best === undefined || head.seq < best.item.seq)) best = { tier, flow, item: head };
      }
    return best;
  }

  #tenantWeight(tenant: string): number {
    const w = this.#o.tenantWeight?.(tenant) ?? 1;
    return w > 0 ? w : 1;
  }

  #tier(p: Priority): Tier<T> {
    const t = this.#tiers.get(p);
    if (!t) throw new Error(`unknown priority ${p}`);
    return t;
  }
}

/** Earlier deadline first among eligible flows (when enabled), then the fair tag, then arrival. */
function before<T extends QueueEntry>(
  fa: Flow<T>,
  a: Item<T>,
  fb: Flow<T>,
  b: Item<T>,
  edf: boolean,
): boolean {
  if (edf && a.entry.deadlineAtMs !== b.entry.deadlineAtMs)
    return a.entry.deadlineAtMs < b.entry.deadlineAtMs;
  if (fa.tag !== fb.tag) return fa.tag < fb.tag;
  return a.seq < b.seq;
}

/**
 * The queue during one {@link PoolQueue.planOffer}: the live tiers, minus the entries the offer
 * will remove. Skipping them costs nothing when there are none (the usual case) and otherwise at
 * most the entries skipped at a flow's end, except that a flow whose newest is leaving is walked
 * from its head (a read-only linked FIFO has no way back).
 */
class PlanView<T extends QueueEntry> implements FullQueueView<T> {
  readonly #tiers: ReadonlyMap<Priority, Tier<T>>;
  readonly #o: PoolQueueOptions;
  readonly #queued: number;
  readonly #gone = new Set<string>();
  readonly #goneIn = new Map<Priority, number>();

  constructor(tiers: ReadonlyMap<Priority, Tier<T>>, opts: PoolQueueOptions, queued: number) {
    this.#tiers = tiers;
    this.#o = opts;
    this.#queued = queued;
  }

  /** Count a queued entry as removed. */
  leave(e: QueueEntry): void {
    if (this.#gone.has(e.id)) return;
    this.#gone.add(e.id);
    this.#goneIn.set(e.priority, (this.#goneIn.get(e.priority) ?? 0) + 1);
  }

  leaving(id: string): boolean {
    return this.#gone.has(id);
  }

  get capacity(): number {
    return this.#o.capacity;
  }

  get size(): number {
    return this.#queued - this.#gone.size;
  }

  capacityOf(p: Priority): number {
    return this.#o.priorityCapacity[p];
  }

  sizeOf(p: Priority): number {
    return (this.#tiers.get(p)?.size ?? 0) - (this.#goneIn.get(p) ?? 0);
  }

  oldest(p: Priority): T | undefined {
    return this.#pick(p, 'oldest', false)?.entry;
  }

  newest(p: Priority): T | undefined {
    return this.#pick(p, 'newest', false)?.entry;
  }

  victimIn(p: Priority, end: QueueEnd): T | undefined {
    const best = this.#pick(p, end, true);
    if (best?.doomed === false && this.#o.doomed) {
      // A doomed entry anywhere in the class goes before a live one.
      for (const flow of this.#tiers.get(p)?.flows.values() ?? [])
        for (const e of flow.fifo.values())
          if (!this.#gone.has(e.entry.id) && this.#o.doomed(e.entry)) return e.entry;
    }
    return best?.entry;
  }

  isDoomed(entry: T): boolean {
    return this.#o.doomed?.(entry) ?? false;
  }

  /** The class's oldest (newest) remaining flow end, a doomed one first when `preferDoomed`. */
  #pick(p: Priority, end: QueueEnd, preferDoomed: boolean): { entry: T; doomed: boolean } | undefined {
    let best: Item<T> | undefined;
    let bestDoomed = false;
    for (const flow of this.#tiers.get(p)?.flows.values() ?? []) {
      const e = end === 'oldest' ? this.#first(flow) : this.#last(flow);
      if (!e) continue;
      const doomed = preferDoomed && (this.#o.doomed?.(e.entry) ?? false);
      const better =
        best === undefined ||
        (doomed && !bestDoomed) ||
        (doomed === bestDoomed && (end === 'oldest' ? e.seq < best.seq : e.seq > best.seq));
      if (better) {
        best = e;
        bestDoomed = doomed;
      }
    }
    return best && { entry: best.entry, doomed: bestDoomed };
  }

  #first(flow: Flow<T>): Item<T> | undefined {
    if (this.#gone.size === 0) return flow.fifo.peekFirst();
    for (const e of flow.fifo.values()) if (!this.#gone.has(e.entry.id)) return e;
    return undefined;
  }

  #last(flow: Flow<T>): Item<T> | undefined {
    const tail = flow.fifo.peekLast();
    if (!tail || !this.#gone.has(tail.entry.id)) return tail;
    let last: Item<T> | undefined;
    for (const e of flow.fifo.values()) if (!this.#gone.has(e.entry.id)) last = e;
    return last;
  }
}
