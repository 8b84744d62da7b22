// IPv4/IPv6 CIDR containment for CEL's cidrContains(). Addresses become bigints; parsed CIDRs are
// cached because policies use a handful of constant ranges.

export interface ParsedCidr {
  v6: boolean;
  base: bigint;
  mask: bigint;
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let out = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255 || (p.length > 1 && p[0] === '0')) return undefined;
    out = (out << 8n) | BigInt(n);
  }
  return out;
}

function parseV6(s: string): bigint | undefined {
  let str = s;
  const zone = str.indexOf('%');
  if (zone >= 0) str = str.slice(0, zone);
  // Embedded IPv4 (e.g. ::ffff:10.0.0.1): rewrite the dotted tail as two hex groups.
  const lastColon = str.lastIndexOf(':');
  if (lastColon >= 0 && str.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(str.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    str = `${str.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = str.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (h: string): bigint[] | undefined => {
    if (h === '') return [];
    const out: bigint[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(parseInt(g, 16)));
    }
    return out;
  };
  const head = parseGroups(halves[0] ?? '');
  const rest = halves.length === 2 ? parseGroups(halves[1] ?? '') : [];
  if (!head || !rest) return undefined;
  let groups: bigint[];
  if (halves.length === 2) {
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<bigint>(fill).fill(0n), ...rest];
  } else {
    groups = head;
    if (groups.length !== 8) return undefined;
  }
  let out = 0n;
  for (const g of groups) out = (out << 16n) | g;
  return out;
}

export function parseIp(s: string): { v6: boolean; value: bigint } | undefined {
  if (s.includes(':')) {
    const v = parseV6(s);
    return v === undefined ? undefined : { v6: true, value: v };
  }
  const v = parseV4(s);
  return v === undefined ? undefined : { v6: false, value: v };
}

const cache = new Map<string, ParsedCidr>();

export function parseCidr(s: string): ParsedCidr {
  const hit = cache.get(s);
  if (hit) return hit;
  const slash = s.indexOf('/');
  const addr = parseIp(slash >= 0 ? s.slice(0, slash) : s);
  if (!addr) throw new Error(`invalid CIDR "${s}"`);
  const bits = addr.v6 ? 128 : 32;
  let prefix = bits;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) throw new Error(`invalid CIDR "${s}": bad prefix length`);
    prefix = Number(p);
  }
  const all = (1n << BigInt(bits)) - 1n;
  const mask = prefix === 0 ? 0n : (all >> BigInt(bits - prefix)) << BigInt(bits - prefix);
  const parsed = { v6: addr.v6, base: addr.value & mask, mask };
  if (cache.size < 1024) cache.set(s, parsed);
  return parsed;
}

/** Whether `ip` lies in `cidr`. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 ranges. Throws on malformed input. */
export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const a = parseIp(ip.trim());
  if (!a) throw new Error(`invalid IP address "${ip}"`);
  let value = a.value;
  let v6 = a.v6;
  if (v6 && !c.v6 && value >> 32n === 0xffffn) {
    value &= 0xffffffffn;
    v6 = false;
  }
  if (v6 !== c.v6) return false;
  return (value & c.mask) === c.base;
}
