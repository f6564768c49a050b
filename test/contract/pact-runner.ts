/**
 * Runs one consumer interaction against a fresh Pact V3 mock (SPEC §16), shared by the consumer
 * suites of every client of llama-orch. The interaction's own code drives the real client against
 * the mock; the mock records the interaction into the consumer's pact file.
 */
import { MatchersV3, PactV3, Verifier, type V3Request, type V3Response } from '@pact-foundation/pact';
import { Agent } from 'undici';

/** One Pact interaction plus what the consumer must make of the answer. */
export interface PactInteraction<C> {
  readonly state?: string;
  readonly params?: Record<string, unknown>;
  readonly description: string;
  readonly request: V3Request;
  readonly response: V3Response;
  /** For text bodies (SSE, Prometheus): the regular expression the provider's body must match. */
  readonly bodyRegex?: string;
  readonly run: (c: C) => Promise<void>;
}

/** Builds the consumer's clients for one mock; `dispatcher` is that mock's own connection pool. */
export type ClientsFor<C> = (url: string, dispatcher: Agent) => C;

/** Whether what the client threw says its request never reached the mock. */
export type ConnectionFailure = (clientError: unknown) => boolean;

const causeHasCode: ConnectionFailure = (clientError) =>
  (clientError as { cause?: { code?: string } } | undefined)?.cause?.code !== undefined;

async function once<C>(
  consumer: string,
  dir: string,
  i: PactInteraction<C>,
  make: ClientsFor<C>,
  connectionFailure: ConnectionFailure,
): Promise<void> {
  const pact = new PactV3({ consumer, provider: 'llama-orch', dir, logLevel: 'error' });
  if (i.state !== undefined) pact.given(i.state, i.params as Parameters<PactV3['given']>[1]);
  pact.uponReceiving(i.description).withRequest(i.request).willRespondWith(i.response);
  if (i.bodyRegex !== undefined)
    pact.withResponseMatchingRules(i.request, {
      body: { path: '$', rules: [MatchersV3.regex(i.bodyRegex, String(i.response.body))] },
    });
  // A fresh connection pool per mock server: a port reused by a later mock must not meet a
  // kept-alive socket to an earlier one.
  const dispatcher = new Agent();
  let clientError: unknown;
  try {
    await pact.executeTest(async (mock) => {
      try {
        await i.run(make(mock.url, dispatcher));
      } catch (err) {
        clientError = err;
        throw err;
      }
    });
  } catch (err) {
    // Pact reports only the mock's side; say what the client saw too.
    const cause = (clientError as { cause?: { code?: string; message?: string } } | undefined)?.cause;
    const message = (err as Error).message;
    // The client got an answer that the mock never saw: the request reached another server
    // (a port handed out again on a busy runner), not this contract.
    const elsewhere = clientError === undefined && /expected but not received/.test(message);
    throw Object.assign(
      new Error(`${message}\nclient: ${String(clientError)} ${cause?.code ?? ''} ${cause?.message ?? ''}`),
      { connectionFailed: connectionFailure(clientError) || elsewhere },
    );
  } finally {
    await dispatcher.close();
  }
}

/**
 * One interaction on a fresh mock, written into `dir`. A connection that never reached the mock
 * (seen on a loaded 2-core runner) says nothing about the contract: one more try on a fresh mock;
 * any contract mismatch fails at once.
 */
export async function verifyInteraction<C>(
  consumer: string,
  dir: string,
  i: PactInteraction<C>,
  make: ClientsFor<C>,
  connectionFailure: ConnectionFailure = causeHasCode,
): Promise<void> {
  try {
    await once(consumer, dir, i, make, connectionFailure);
  } catch (err) {
    if ((err as { connectionFailed?: boolean }).connectionFailed !== true) throw err;
    await once(consumer, dir, i, make, connectionFailure);
  }
}

/**
 * Replays `pactFile` against the orchestrator at `providerUrl` (its provider states set up on
 * `orchestratorUrl`, the same server unless a proxy stands in between).
 */
export function verifyProvider(
  pactFile: string,
  providerUrl: string,
  opts: { orchestratorUrl?: string; logLevel?: 'warn' | 'error' } = {},
): Promise<unknown> {
  return new Verifier({
    provider: 'llama-orch',
    providerBaseUrl: providerUrl,
    pactUrls: [pactFile],
    providerStatesSetupUrl: `${opts.orchestratorUrl ?? providerUrl}/__test/provider-states`,
    logLevel: opts.logLevel ?? 'warn',
  }).verifyProvider();
}
