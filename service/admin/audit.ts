// Every change made through the admin API becomes a lineage record with an `audit` part: same sinks,
// same spool, same query path as request records (docs/keys.md).
import { randomUUID } from 'node:crypto';
import type { LineageRecord } from '../lineage/record.ts';
import type { AdminActor } from './auth.ts';

export interface AuditEvent {
  action: string;
  actor: AdminActor;
  target: string;
  tenant: string;
  team?: string;
  method: string;
  path: string;
  status: number;
  detail?: Record<string, string>;
}

export function auditRecord(e: AuditEvent, instance: string, now: Date): LineageRecord {
  return {
    requestId: randomUUID(),
    decisionId: randomUUID(),
    startTime: now,
    endTime: now,
    principal: { authMethod: 'none', keyId: e.target, tenant: e.tenant, ...(e.team ? { team: e.team } : {}) },
    request: { endpoint: e.path, method: e.method },
    statusCode: e.status,
    outcome: 'success',
    gatewayInstance: instance,
    audit: { action: e.action, actor: e.actor.name, target: e.target, ...(e.detail && Object.keys(e.detail).length ? { detail: e.detail } : {}) },
  };
}

/** Which fields a change touched, with non-secret values (limits as JSON). */
export function describeChange(fields: object): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}
