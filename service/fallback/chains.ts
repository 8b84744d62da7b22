// Which fallback chain (Envoy priority cluster) a routed request may use. A chain is only used
// when it agrees with routing: its first deployment is routing's choice, and every member is a
// candidate routing allowed (policy route checks, provider preferences, credentials, health).
// Otherwise the request takes the single-cluster path, as before.
import type { FallbackChain } from '../config/types.ts';
import type { Candidate } from '../routing/index.ts';

export interface ChosenChain {
  cluster: string;
  /** Candidates in chain (priority) order. */
  members: Candidate[];
}

export function chooseChain(
  primary: Candidate,
  candidates: readonly Candidate[],
  usable: (c: Candidate) => boolean,
): ChosenChain | undefined {
  const byId = new Map(candidates.map((c) => [c.deployment.id, c]));
  for (const chain of primary.model.fallbackChains as readonly FallbackChain[]) {
    if (chain.deployments[0] !== primary.deployment.id) continue;
    const members: Candidate[] = [];
    for (const id of chain.deployments) {
      const c = byId.get(id);
      if (!c || !usable(c)) break;
      members.push(c);
    }
    if (members.length === chain.deployments.length) return { cluster: chain.cluster, members };
  }
  return undefined;
}
