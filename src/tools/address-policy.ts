/**
 * Which hosts and addresses the tool proxy may reach (SPEC §10): domain allow/deny lists and the
 * classes of addresses that are not globally routable, IPv4 and IPv6 (IPv4-mapped IPv6 addresses
 * are judged as the IPv4 address they carry).
 */
import { BlockList, isIP } from 'node:net';

/** Non-public IPv4 ranges (RFC 6890 special-purpose registry), by the class a refusal names. */
const V4_RANGES: readonly (readonly [string, number, string])[] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared (CGNAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

/** Non-public IPv6 ranges; `::ffff:0:0/96` is absent: mapped addresses are judged as IPv4. */
const V6_RANGES: readonly (readonly [string, number, string])[] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::', 96, 'reserved'],
  ['64:ff9b::', 96, 'NAT64'],
  ['64:ff9b:1::', 48, 'NAT64'],
  ['100::', 64, 'discard'],
  ['2001::', 23, 'reserved'],
  ['2001:db8::', 32, 'documentation'],
  ['2002::', 16, '6to4'],
  ['fc00::', 7, 'unique-local'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
];

const CLASSES: readonly { readonly label: string; readonly list: BlockList }[] = (() => {
  const byLabel = new Map<string, BlockList>();
  const add = (addr: string, prefix: number, label: string, type: 'ipv4' | 'ipv6') => {
    let list = byLabel.get(label);
    if (!list) byLabel.set(label, (list = new BlockList()));
    list.addSubnet(addr, prefix, type);
  };
  for (const [a, p, l] of V4_RANGES) add(a, p, l, 'ipv4');
  for (const [a, p, l] of V6_RANGES) add(a, p, l, 'ipv6');
  return [...byLabel].map(([label, list]) => ({ label, list }));
})();

/** The 8 hextets of an IPv6 address (`::` expanded, a dotted IPv4 tail converted). */
function hextets(v6: string): number[] {
  let s = v6.toLowerCase().split('%')[0] ?? '';
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted?.[1] !== undefined) {
    const o = dotted[1].split('.').map(Number);
    s = `${s.slice(0, -dotted[1].length)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((x) => parseInt(x, 16));
}

/**
 * An address as the family it is judged in: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, in
 * any spelling) is its IPv4 address, so a mapped loopback is a loopback.
 */
export function normalizeAddress(address: string): { address: string; family: 4 | 6 } | undefined {
  const bare = address.replace(/^\[(.*)\]$/, '$1');
  const kind = isIP(bare.split('%')[0] ?? '');
  if (kind === 4) return { address: bare, family: 4 };
  if (kind !== 6) return undefined;
  const x = hextets(bare);
  if (x.length === 8 && x.slice(0, 5).every((n) => n === 0) && x[5] === 0xffff)
    return { address: `${x[6]! >> 8}.${x[6]! & 255}.${x[7]! >> 8}.${x[7]! & 255}`, family: 4 };
  return { address: bare.split('%')[0] ?? bare, family: 6 };
}

/** The class of a non-public address (`loopback`, `private`, …), or undefined for a public one. */
export function nonPublicClass(address: string): string | undefined {
  const n = normalizeAddress(address);
  if (n === undefined) return 'invalid';
  const type = n.family === 4 ? 'ipv4' : 'ipv6';
  return CLASSES.find((c) => c.list.check(n.address, type))?.label;
}

/** `addr/prefix` (or a bare address) as a subnet, or undefined when it is none. */
export function parseCidr(cidr: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
  const [addr = '', prefixText, extra] = cidr.trim().split('/');
  if (extra !== undefined) return undefined;
  const n = normalizeAddress(addr);
  if (n === undefined) return undefined;
  const max = n.family === 4 ? 32 : 128;
  // A mapped range (`::ffff:10.0.0.0/104`) is the IPv4 range it maps.
  const mapped = n.family === 4 && isIP(addr) === 6;
  const given = prefixText === undefined ? (mapped ? 128 : max) : Number(prefixText);
  const prefix = mapped ? given - 96 : given;
  if (
    !Number.isInteger(prefix) ||
    prefix < 0 ||
    prefix > max ||
    (prefixText !== undefined && !/^\d+$/.test(prefixText))
  )
    return undefined;
  return { address: n.address, prefix, family: n.family };
}

/** A set of allowed ranges (`tools.allow_cidrs`). */
export class CidrSet {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  constructor(cidrs: readonly string[]) {
    let any = false;
    for (const c of cidrs) {
      const r = parseCidr(c);
      if (r === undefined) continue;
      this.#list.addSubnet(r.address, r.prefix, r.family === 4 ? 'ipv4' : 'ipv6');
      any = true;
    }
    this.#empty = !any;
  }

  has(address: string): boolean {
    if (this.#empty) return false;
    const n = normalizeAddress(address);
    return n !== undefined && this.#list.check(n.address, n.family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** The entry of `list` that matches `host` (`example.com` exactly, `.example.com` strictly below it). */
export function matchDomain(host: string, list: readonly string[]): string | undefined {
  const h = host.toLowerCase().replace(/\.$/, '');
  return list.find((d) => (d.startsWith('.') ? h.endsWith(d) && h.length > d.length : h === d));
}
