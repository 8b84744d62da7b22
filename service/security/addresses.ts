// Whether a listen address is reachable only from this host.
import { isIP } from 'node:net';

/** `host:port` as grpc-js and node:http take it; `unix:` sockets count as local. */
export function isLoopbackAddr(addr: string): boolean {
  const a = addr.trim();
  if (a.startsWith('unix:')) return true;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):\d+$/.exec(a.replace(/^(dns|ipv4|ipv6):/, ''));
  const host = (m?.[1] ?? m?.[2])?.toLowerCase();
  if (!host) return false;
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./.test(host);
  return false;
}
