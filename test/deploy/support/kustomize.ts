// A small kustomize for the deploy tests (no kubectl here), covering exactly the features the shipped
// kustomizations use: resources (files and directories), namespace, labels, images, configMapGenerator
// (files, behavior: merge) and secretGenerator (envs), with kustomize's name-hash suffix on generated objects
// and references to them rewritten in pod specs. Like `kubectl kustomize`, a generator file outside the
// kustomization directory is refused unless loadRestrictorNone (--load-restrictor LoadRestrictionsNone).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
};

interface Generator {
  name: string;
  behavior?: 'create' | 'merge' | 'replace';
  files?: string[];
  envs?: string[];
  literals?: string[];
}

interface Kustomization {
  namespace?: string;
  resources?: string[];
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean }[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
  configMapGenerator?: Generator[];
  secretGenerator?: Generator[];
}

export interface RenderOptions {
  loadRestrictorNone?: boolean;
  /** Files that stand in for ones not in the repository (e.g. secrets.env), by absolute path. */
  files?: Record<string, string>;
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PriorityClass', 'StorageClass']);

/** Objects in the order kustomize keeps them; generated ConfigMaps/Secrets carry `generatedFrom`. */
export type Rendered = (K8sObject & { generatedFrom?: string })[];

export function kustomize(dir: string, opts: RenderOptions = {}): Rendered {
  const kfile = join(dir, 'kustomization.yaml');
  if (!existsSync(kfile)) throw new Error(`${dir}: no kustomization.yaml`);
  const k = parseAllDocuments(readFileSync(kfile, 'utf8'))[0]!.toJS() as Kustomization;
  const out: Rendered = [];
  for (const r of k.resources ?? []) {
    const p = resolve(dir, r);
    if (statSync(p).isDirectory()) out.push(...kustomize(p, opts));
    else for (const d of parseAllDocuments(readFileSync(p, 'utf8'))) if (d.contents) out.push(d.toJS() as K8sObject);
  }
  const readFile = (rel: string): string => {
    const p = resolve(dir, rel);
    if (!opts.loadRestrictorNone && relative(dir, p).startsWith('..'))
      throw new Error(`security; file '${p}' is not in or below '${dir}' (use --load-restrictor LoadRestrictionsNone)`);
    return opts.files?.[p] ?? readFileSync(p, 'utf8');
  };
  const generate = (kind: 'ConfigMap' | 'Secret', g: Generator) => {
    const data: Record<string, string> = {};
    for (const f of g.files ?? []) {
      const [key, path] = f.includes('=') ? f.split('=', 2) as [string, string] : [f.split('/').at(-1)!, f];
      if (!/^[-._a-zA-Z0-9]+$/.test(key)) throw new Error(`${g.name}: invalid key ${key}`);
      data[key] = readFile(path);
    }
    for (const e of g.envs ?? [])
      for (const line of readFile(e).split('\n')) {
        const t = line.trim();
        if (!t || t.startsWith('#')) continue;
        const i = t.indexOf('=');
        if (i <= 0) throw new Error(`${e}: "${t}" is not KEY=VALUE`);
        data[t.slice(0, i)] = t.slice(i + 1);
      }
    for (const l of g.literals ?? []) data[l.slice(0, l.indexOf('='))] = l.slice(l.indexOf('=') + 1);
    if (g.behavior === 'merge' || g.behavior === 'replace') {
      const base = out.find((o) => o.kind === kind && o.generatedFrom === g.name);
      if (!base) throw new Error(`${g.name}: behavior ${g.behavior} but no ${kind} ${g.name} in the bases`);
      const field = kind === 'Secret' ? 'data' : 'data';
      const enc = kind === 'Secret' ? (v: string) => Buffer.from(v).toString('base64') : (v: string) => v;
      const merged = g.behavior === 'merge' ? { ...(base[field] as Record<string, string>) } : {};
      for (const [key, v] of Object.entries(data)) merged[key] = enc(v);
      base[field] = merged;
      return;
    }
    const obj: K8sObject & { generatedFrom: string } = {
      apiVersion: 'v1',
      kind,
      metadata: { name: g.name },
      generatedFrom: g.name,
      ...(kind === 'Secret' ? { type: 'Opaque', data: Object.fromEntries(Object.entries(data).map(([a, v]) => [a, Buffer.from(v).toString('base64')])) } : { data }),
    };
    out.push(obj);
  };
  for (const g of k.configMapGenerator ?? []) generate('ConfigMap', g);
  for (const g of k.secretGenerator ?? []) generate('Secret', g);
  for (const o of out) {
    if (k.namespace && !CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
    if (k.namespace && o.kind === 'Namespace') continue;
    for (const l of k.labels ?? []) o.metadata.labels = { ...o.metadata.labels, ...l.pairs };
    for (const img of k.images ?? [])
      for (const c of containersOf(o))
        if (c.image === img.name || c.image.startsWith(`${img.name}:`) || c.image.startsWith(`${img.name}@`))
          c.image = `${img.newName ?? img.name}${img.digest ? `@${img.digest}` : `:${img.newTag ?? 'latest'}`}`;
  }
  return out;
}

/** The final names (with kustomize's hash suffix) and the pod-spec references rewritten to them. Call once, on the top-level render. */
export function withNameHashes(objs: Rendered): Rendered {
  const renames = new Map<string, string>();
  for (const o of objs) {
    if (!o.generatedFrom) continue;
    const hash = createHash('sha256').update(JSON.stringify({ kind: o.kind, data: o.data })).digest('hex').slice(0, 10);
    const name = `${o.generatedFrom}-${hash}`;
    renames.set(`${o.kind}/${o.generatedFrom}`, name);
    o.metadata.name = name;
  }
  for (const o of objs) {
    const spec = podSpecOf(o);
    if (!spec) continue;
    for (const v of (spec.volumes ?? []) as { configMap?: { name: string }; secret?: { secretName: string } }[]) {
      if (v.configMap) v.configMap.name = renames.get(`ConfigMap/${v.configMap.name}`) ?? v.configMap.name;
      if (v.secret) v.secret.secretName = renames.get(`Secret/${v.secret.secretName}`) ?? v.secret.secretName;
    }
    for (const c of containersOf(o)) {
      for (const e of c.envFrom ?? []) {
        if (e.secretRef) e.secretRef.name = renames.get(`Secret/${e.secretRef.name}`) ?? e.secretRef.name;
        if (e.configMapRef) e.configMapRef.name = renames.get(`ConfigMap/${e.configMapRef.name}`) ?? e.configMapRef.name;
      }
      for (const e of c.env ?? []) {
        const s = e.valueFrom?.secretKeyRef;
        if (s) s.name = renames.get(`Secret/${s.name}`) ?? s.name;
      }
    }
  }
  return objs;
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } } }[];
  envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface Probe {
  httpGet?: { path: string; port: number | string };
  grpc?: { port: number };
}

export function podSpecOf(o: K8sObject): Record<string, unknown> & { volumes?: unknown[]; containers?: Container[] } | undefined {
  const spec = o.spec as { template?: { spec?: Record<string, unknown> } } | undefined;
  return spec?.template?.spec as (Record<string, unknown> & { containers?: Container[] }) | undefined;
}

export function containersOf(o: K8sObject): Container[] {
  return podSpecOf(o)?.containers ?? [];
}
