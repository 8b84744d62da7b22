// What an Exchange is built from: an immutable config Snapshot (taken at stream start, so a
// reload never changes a request mid-flight) and the long-lived process Services.
import type { Logger } from 'pino';
import type { CoreConfig } from '../config/loader.ts';
import type { KeyStore } from '../identity/keys.ts';
import type { PolicyBundle } from '../policy/types.ts';
import type { Catalog, HealthTracker, Router } from '../routing/index.ts';
import type { AttemptLog } from '../fallback/attempts.ts';
import type { PlanSealer } from '../fallback/seal.ts';
import type { BudgetPort, LineagePort, RedactionPort } from './ports.ts';

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
  /** Request metrics are derived from each lineage record by the emitter, off the hot path. */
  lineage: LineagePort;
  /** Failed fallback attempts seen by this replica's upstream stage, joined into lineage by request id. */
  attempts: AttemptLog;
  /** Seals the fallback plan the router stage writes to dynamic metadata (docs/security.md). */
  plans: PlanSealer;
  log: Logger;
  now: () => Date;
  /** Name of this replica, for lineage. */
  instance: string;
}
