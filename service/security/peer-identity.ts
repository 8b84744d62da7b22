// Which client certificates may open ext_proc streams: the identities (subject alternative names)
// of the certificate the peer presented in the mTLS handshake, e.g. an Istio/SPIFFE workload id
// `spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway` (URI SAN) or a DNS SAN.
import type { PeerCertificate } from 'node:tls';

export interface PeerIdentities {
  uris: string[];
  dns: string[];
}

/**
 * Node's `subjectaltname` string: `DNS:a.example, URI:spiffe://td/ns/x/sa/y, IP Address:10.0.0.1`.
 * Values with special characters come JSON-quoted (`DNS:"a,b"`), so a comma inside one cannot
 * smuggle in a second name.
 */
export function parseSubjectAltNames(san: string | undefined): PeerIdentities {
  const out: PeerIdentities = { uris: [], dns: [] };
  if (!san) return out;
  const re = /(?:^|,\s*)([A-Za-z][A-Za-z ]*):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(san)) !== null) {
    const kind = m[1]!;
    let value = m[2]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    if (kind === 'URI') out.uris.push(value);
    else if (kind === 'DNS') out.dns.push(value.toLowerCase());
  }
  return out;
}

/** Allowed identities: entries with `://` are URI SANs (exact), others DNS SANs (case-insensitive); `*` = any. */
export class PeerAllowList {
  private readonly any: boolean;
  private readonly uris: Set<string>;
  private readonly dns: Set<string>;

  constructor(entries: readonly string[]) {
    const list = entries.map((e) => e.trim()).filter(Boolean);
    this.any = list.includes('*');
    this.uris = new Set(list.filter((e) => e.includes('://')));
    this.dns = new Set(list.filter((e) => e !== '*' && !e.includes('://')).map((e) => e.toLowerCase()));
  }

  get allowsAny(): boolean {
    return this.any;
  }

  allows(cert: PeerCertificate | undefined): boolean {
    if (!cert || Object.keys(cert).length === 0) return false;
    if (this.any) return true;
    const ids = parseSubjectAltNames(cert.subjectaltname);
    return ids.uris.some((u) => this.uris.has(u)) || ids.dns.some((d) => this.dns.has(d));
  }
}
