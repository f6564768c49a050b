/**
 * In-process stand-ins for unit tests of the orchestrator core: a supervisor whose replicas are
 * driven by the test, and an adapter whose token stream the test releases step by step.
 */
import type {
  EngineAdapter,
  EngineEvent,
  EngineHealth,
  EngineProps,
  GenerateRequest,
} from '../../src/engines/adapter.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { ALL_SAMPLING, checkSupport, type RequestSupport } from '../../src/engines/request-support.js';
import type { PoolSupervisor, ReplicaState, ReplicaView } from '../../src/pool/replica.js';

export class StepAdapter implements EngineAdapter {
  readonly engine = 'llamacpp' as const;
  readonly baseUrl = 'fake://engine';
  readonly requests: GenerateRequest[] = [];
  /** Engine tokenizer round trips (admission must do its cheap checks first). */
  tokenizations = 0;
  /** Slots whose KV was erased (session deletes). */
  readonly erased: number[] = [];
  readonly #waiters: (() => void)[] = [];
  #released = 0;
  active = 0;

  async probe(): Promise<EngineHealth> {
    return { live: true, ready: true, loading: false };
  }
  async properties(): Promise<EngineProps> {
    return {
      slotsTotal: 1,
      slotsFree: 1,
      ctx: 512,
      model: 'fake',
      engineVersion: 'fake-1',
      modelDigest: undefined,
      features: { continuousBatching: false, interruptibleDecode: false, embeddings: false },
    };
  }
  async countTokens(text: string, _signal?: AbortSignal): Promise<number> {
    this.tokenizations++;
    return text.length;
  }
  /** What this fake engine honours (tests narrow it to see refusals). */
  support: RequestSupport = {
    sampling: ALL_SAMPLING,
    stop: true,
    responseFormat: new Set(['json_object', 'json_schema']),
    messages: true,
    tools: 'the fake engine has no tool parser',
  };
  checkRequest(req: GenerateRequest): void {
    checkSupport(this.engine, req, this.support);
  }
  /** Chat turns count as their text plus one token a turn (a stand-in template). */
  async countChatTokens(input: {
    messages?: readonly { content: string | null }[] | undefined;
  }): Promise<number> {
    this.tokenizations++;
    return (input.messages ?? []).reduce((n, m) => n + 1 + (m.content ?? '').length, 0);
  }
  async eraseKv(slotId: number): Promise<void> {
    this.erased.push(slotId);
  }
  async close(): Promise<void> {}

  async scrapeMetrics(): Promise<string> {
    return '';
  }

  /** Let every running stream produce `n` more tokens. */
  release(n = 1): void {
    this.#released += n;
    for (const w of this.#waiters.splice(0)) w();
  }

  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    this.requests.push(req);
    this.active++;
    try {
      let produced = 0;
      while (produced < req.maxTokens) {
        while (this.#released <= produced) {
          await new Promise<void>((resolve, reject) => {
            if (signal.aborted) return reject(signal.reason as Error);
            const onAbort = () => reject(signal.reason as Error);
            signal.addEventListener('abort', onAbort, { once: true });
            this.#waiters.push(() => {
              signal.removeEventListener('abort', onAbort);
              resolve();
            });
          });
        }
        signal.throwIfAborted();
        yield { kind: 'tokens', count: 1, ids: [100 + produced], text: `t${produced}` };
        produced++;
      }
      yield {
        kind: 'done',
        tokensIn: req.prompt.length,
        tokensOut: produced,
        stopReason: 'length',
        slotId: 0,
      };
    } finally {
      this.active--;
    }
  }
}

/** An engine that fails every request, before its first token or after `afterTokens` tokens. */
export class FailingAdapter extends StepAdapter {
  readonly #afterTokens: number;
  constructor(afterTokens = 0) {
    super();
    this.#afterTokens = afterTokens;
  }
  override async *generate(req: GenerateRequest): AsyncGenerator<EngineEvent> {
    this.requests.push(req);
    for (let i = 0; i < this.#afterTokens; i++)
      yield { kind: 'tokens', count: 1, ids: [200 + i], text: `f${i}` };
    throw new OrchError('WORKER_RESET', 'connection to the llamacpp engine lost (ECONNRESET)', {
      engine: 'llamacpp',
    });
  }
}

/** An engine whose tokenizer accepts the request and never answers (a frozen process). */
export class FrozenTokenizerAdapter extends StepAdapter {
  override async countTokens(_text: string, signal?: AbortSignal): Promise<number> {
    this.tokenizations++;
    return new Promise((_resolve, reject) => {
      signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
  }
}

export class FakeSupervisor implements PoolSupervisor {
  readonly poolId: string;
  readonly #replicas: {
    id: string;
    state: ReplicaState;
    adapter: EngineAdapter;
    props: EngineProps | undefined;
  }[];
  readonly #listeners = new Set<(r: ReplicaView) => void>();

  constructor(
    poolId: string,
    adapters: EngineAdapter[],
    opts: { interruptible?: boolean; engineVersion?: string; embeddings?: boolean } = {},
  ) {
    this.poolId = poolId;
    this.#replicas = adapters.map((adapter, i) => ({
      id: `${poolId}-r${i}`,
      state: { kind: 'ready' },
      adapter,
      props: {
        slotsTotal: 1,
        slotsFree: 1,
        ctx: 512,
        model: 'fake',
        engineVersion: opts.engineVersion ?? 'fake-1',
        modelDigest: undefined,
        features: {
          continuousBatching: false,
          interruptibleDecode: opts.interruptible ?? false,
          embeddings: opts.embeddings ?? false,
        },
      },
    }));
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  replicas(): readonly ReplicaView[] {
    return this.#replicas.map((r) => ({ ...r, poolId: this.poolId }));
  }
  setState(index: number, state: ReplicaState): void {
    const r = this.#replicas[index];
    if (!r) throw new Error('no replica');
    r.state = state;
    for (const l of this.#listeners) l({ ...r, poolId: this.poolId });
  }
  onChange(listener: (r: ReplicaView) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  /** Restarts asked for (outlier ejection), in order. */
  readonly restarts: { replicaId: string; cause: string }[] = [];
  /** Records the request; the fake has no engine to restart, so the replica never "comes back". */
  async restartReplica(replicaId: string, cause: string): Promise<boolean> {
    this.restarts.push({ replicaId, cause });
    return false;
  }
}
