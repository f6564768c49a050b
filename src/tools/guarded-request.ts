/**
 * One outbound HTTP exchange of the tool proxy, guarded hop by hop (SPEC §10): every URL (the
 * first and each redirect target) is checked against the tenant's domain rules, its host is
 * resolved once and every resolved address checked, and the connection goes to the checked
 * address — the socket never asks DNS again, so a name cannot change its answer between check
 * and connect. Redirects are followed here, never by the HTTP client. The body is read up to the
 * size bound and cut there; the whole exchange runs under one deadline.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { CidrSet, matchDomain, nonPublicClass } from './address-policy.js';
import type { ToolPolicy } from './tools-config.js';
import { denied, invalid, timedOut, ToolError, upstreamFailed } from './tool-error.js';

const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

export interface GuardedRequest {
  readonly url: URL;
  readonly method: 'GET' | 'HEAD';
  readonly headers: Readonly<Record<string, string>>;
  readonly policy: ToolPolicy;
  /**
   * The operator's own endpoint (the search provider): the tenant's domain and address rules do
   * not apply, the time and size bounds do.
   */
  readonly trusted?: boolean;
  /** The resolver (default: the system's, `dns.lookup`); asked once per hop. */
  readonly resolve?: Resolver;
}

/** Every address of a host name. */
export type Resolver = (host: string) => Promise<readonly { address: string; family: number }[]>;

const systemResolver: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

export interface UpstreamResponse {
  /** The URL that answered (after redirects). */
  readonly url: URL;
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** `type/subtype`, lower case; empty when the response carries no content type. */
  readonly mediaType: string;
  readonly body: Buffer;
  /** Bytes read from the upstream body (at most `max_response_bytes`). */
  readonly bytes: number;
  readonly truncated: boolean;
  readonly redirects: number;
}

/** Whether `mediaType` is on the allow-list (`type/subtype` or `type/*`). */
export function mimeAllowed(mediaType: string, allowed: readonly string[]): boolean {
  const type = mediaType.split('/')[0] ?? '';
  return allowed.includes(mediaType) || allowed.includes(`${type}/*`);
}

/** The checks of one URL before any connection: scheme, credentials, IP literals, domain lists. */
export function checkUrl(url: URL, policy: ToolPolicy): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid(`url: scheme '${url.protocol.replace(/:$/, '')}' is not http or https`);
  if (url.username !== '' || url.password !== '')
    throw invalid('url: credentials in the URL are not allowed');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (isIP(host) !== 0) {
    if (!policy.allowIpLiterals)
      throw denied(`host '${host}' is an IP address literal; tools.allow_ip_literals would allow it`);
  }
  const deny = matchDomain(host, policy.denyDomains);
  if (deny !== undefined) throw denied(`host '${host}' is denied by tools.deny_domains entry '${deny}'`);
  if (policy.allowDomains.length > 0 && matchDomain(host, policy.allowDomains) === undefined)
    throw denied(`host '${host}' is not in tools.allow_domains`);
}

/** Resolves `host` once and checks every address; answers the address to connect to. */
export async function resolveChecked(
  host: string,
  policy: ToolPolicy,
  trusted: boolean,
  resolve: Resolver = systemResolver,
): Promise<{ address: string; family: 4 | 6 }> {
  let addresses: readonly { address: string; family: number }[];
  if (isIP(host) !== 0) addresses = [{ address: host, family: isIP(host) }];
  else
    try {
      addresses = await resolve(host);
    } catch (err) {
      throw upstreamFailed(
        `host '${host}' could not be resolved (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        err,
      );
    }
  if (addresses.length === 0) throw upstreamFailed(`host '${host}' has no address`);
  if (!trusted) {
    const cidrs = new CidrSet(policy.allowCidrs);
    for (const a of addresses) {
      const cls = nonPublicClass(a.address);
      if (cls !== undefined && !policy.allowPrivate && !cidrs.has(a.address))
        throw denied(
          `host '${host}' resolves to ${a.address}, a ${cls} address; tools.allow_private or tools.allow_cidrs would allow it`,
        );
    }
  }
  const first = addresses[0]!;
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

function pinned(address: string, family: 4 | 6): LookupFunction {
  return (_host, options, callback) => {
    // Node asks for every address when it may race families (autoSelectFamily): one is given.
    if (options.all === true)
      (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

function send(
  url: URL,
  target: { address: string; family: 4 | 6 },
  method: string,
  headers: Readonly<Record<string, string>>,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request({
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method,
      headers: { ...headers, host: url.host },
      lookup: pinned(target.address, target.family),
      agent: false,
      signal,
    });
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
}

async function readBody(
  res: IncomingMessage,
  max: number,
): Promise<{ body: Buffer; bytes: number; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let truncated = false;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    const room = max - bytes;
    if (chunk.length > room) {
      chunks.push(chunk.subarray(0, room));
      bytes += room;
      truncated = true;
      break;
    }
    chunks.push(chunk);
    bytes += chunk.length;
  }
  if (truncated) res.destroy();
  return { body: Buffer.concat(chunks), bytes, truncated };
}

/** Runs the exchange; refusals and failures are `ToolError`s. */
export async function guardedRequest(r: GuardedRequest): Promise<UpstreamResponse> {
  const { policy } = r;
  const trusted = r.trusted === true;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), policy.timeoutMs);
  let current = r.url;
  let redirects = 0;
  let open: IncomingMessage | undefined;
  try {
    for (;;) {
      if (!trusted) checkUrl(current, policy);
      const host = current.hostname.replace(/^\[(.*)\]$/, '$1');
      const target = await resolveChecked(host, policy, trusted, r.resolve);
      if (controller.signal.aborted) throw timedOut(policy.timeoutMs);
      const res = await send(current, target, r.method, r.headers, controller.signal);
      open = res;
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (REDIRECTS.has(status) && location !== undefined) {
        res.resume();
        if (++redirects > policy.maxRedirects)
          throw upstreamFailed(`more than tools.max_redirects (${policy.maxRedirects}) redirects`);
        try {
          current = new URL(location, current);
        } catch {
          throw upstreamFailed(`the upstream redirected to an invalid URL`);
        }
        continue;
      }
      const contentType = res.headers['content-type'];
      const mediaType = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
      const bodiless = r.method === 'HEAD' || status === 204 || status === 304;
      if (
        !trusted &&
        !(bodiless && mediaType === '') &&
        !mimeAllowed(mediaType || 'application/octet-stream', policy.allowedMimeTypes)
      ) {
        res.destroy();
        throw denied(`content type '${mediaType || 'none'}' is not in tools.allowed_mime_types`);
      }
      const read =
        r.method === 'HEAD'
          ? { body: Buffer.alloc(0), bytes: 0, truncated: false }
          : await readBody(res, policy.maxResponseBytes);
      return { url: current, status, headers: res.headers, mediaType, ...read, redirects };
    }
  } catch (err) {
    open?.destroy();
    if (err instanceof ToolError) throw err;
    if (controller.signal.aborted) throw timedOut(policy.timeoutMs);
    throw upstreamFailed(
      `the upstream request failed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      err,
    );
  } finally {
    clearTimeout(timer);
  }
}
