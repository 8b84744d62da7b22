// What an Exchange is built from: an immutable config Snapshot (taken at stream start, so a
// reload never changes a request mid-flight) and the long-lived process Services.
import type { Logger } from 'pino';
import type { CoreConfig } from '../config/loader.ts';
import type { KeyStore } from '../identity/keys.ts';
import type { PolicyBundle } from '../policy/types.ts';
import type { Catalog, HealthTracker, Router } from '../routing/index.ts';
import type { AttemptLog } from '../fallback/attempts.ts';
import type { PlanSealer } from '../fallback/seal.ts';
import type { PendingOutcomes } from './outcome.ts';
import type { BudgetPort, LineagePort, OutcomeConsumer, RedactionPort } from './ports.ts';

export interface Snapshot {
  /** Content hash of the whole config directory. */
  revision: string;
  core: CoreConfig;
  policy: PolicyBundle;
  catalog: Catalog;
  router: Router;
  keys: KeyStore;
  loadedAt: Date;
}

export interface Services {
  snapshot(): Snapshot;
  health: HealthTracker;
  budgets: BudgetPort;
  redaction: RedactionPort;
  /** Audit: each finished request's record (bounded queue and spool: a loss there is counted, and only there). */
  lineage: LineagePort;
  /** The other consumers of the same record (request metrics, traces), each fed independently of lineage. */
  consumers: OutcomeConsumer[];
  /** Ended requests whose record is not published yet: a graceful shutdown waits for them. */
  finishing: PendingOutcomes;
  /** Failed fallback attempts seen by this replica's upstream stage, joined into lineage by request id. */
  attempts: AttemptLog;
  /** Seals the fallback plan the router stage writes to dynamic metadata (docs/security.md). */
  plans: PlanSealer;
  log: Logger;
  now: () => Date;
  /** Name of this replica, for lineage. */
  instance: string;
}
