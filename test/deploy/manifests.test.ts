import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfigInput } from '../../src/config/load.js';

/**
 * deploy/ cannot be exercised here (no Docker, no cluster), so its files are parsed and checked
 * for what must be there: the fields that, when wrong, make a deployment fail or run unsafely.
 */

// .test-build/test/deploy/ -> the repository's deploy/
const deployDir = fileURLToPath(new URL('../../../deploy/', import.meta.url));
const manifestsDir = join(deployDir, 'kubernetes');

type Obj = Record<string, any>;

function manifests(): Obj[] {
  const docs: Obj[] = [];
  for (const name of readdirSync(manifestsDir).filter((n) => /\.ya?ml$/.test(n) && n !== 'kustomization.yaml')) {
    for (const doc of parseAllDocuments(readFileSync(join(manifestsDir, name), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${name} parses`);
      const value = doc.toJS() as Obj | null;
      if (value !== null) docs.push({ ...value, file: name });
    }
  }
  return docs;
}

function only(docs: readonly Obj[], kind: string): Obj {
  const found = docs.filter((d) => d['kind'] === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0] as Obj;
}

const docs = manifests();
const deployment = only(docs, 'Deployment');
const pod = deployment['spec']['template']['spec'];
const container = pod['containers'][0];
const configMap = only(docs, 'ConfigMap');
/** The config file Switchyard reads: the ConfigMap key the container's --config names. */
const configPath = container['args'][container['args'].indexOf('--config') + 1] as string;
const configText = configMap['data'][configPath.split('/').at(-1) as string] as string;
const config = parse(configText) as Obj;

/** A container port by name or number. */
function containerPort(port: string | number): number {
  if (typeof port === 'number') return port;
  const found = (container['ports'] as Obj[]).find((p) => p['name'] === port);
  assert.ok(found !== undefined, `container port named ${port}`);
  return found['containerPort'] as number;
}

describe('deploy/kubernetes manifests', () => {
  test('every file parses and every object has apiVersion, kind and a name', () => {
    assert.ok(docs.length >= 6);
    for (const doc of docs) {
      assert.equal(typeof doc['apiVersion'], 'string', doc['file']);
      assert.equal(typeof doc['metadata']?.['name'], 'string', doc['file']);
    }
    const listed = (parse(readFileSync(join(manifestsDir, 'kustomization.yaml'), 'utf8')) as Obj)['resources'] as string[];
    assert.deepEqual([...listed].sort(), [...new Set(docs.map((d) => d['file'] as string))].sort(), 'kustomization lists every manifest');
  });

  test('RBAC: get, list and watch on discovery.k8s.io endpointslices, bound to the pods\' ServiceAccount', () => {
    const account = only(docs, 'ServiceAccount');
    const role = only(docs, 'Role');
    const binding = only(docs, 'RoleBinding');
    const rule = (role['rules'] as Obj[]).find((r) => r['resources'].includes('endpointslices'));
    assert.ok(rule !== undefined);
    assert.deepEqual(rule['apiGroups'], ['discovery.k8s.io']);
    for (const verb of ['get', 'list', 'watch']) assert.ok(rule['verbs'].includes(verb), verb);
    assert.deepEqual(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role['metadata']['name'] });
    assert.deepEqual(binding['subjects'], [{ kind: 'ServiceAccount', name: account['metadata']['name'] }]);
    assert.equal(pod['serviceAccountName'], account['metadata']['name']);
  });

  test('Deployment: several replicas, /ready and /live on the config\'s admin port, resources, non-root, read-only', () => {
    assert.ok(deployment['spec']['replicas'] >= 2);
    const adminPort = config['admin']['port'] as number;
    assert.equal(container['readinessProbe']['httpGet']['path'], '/ready');
    assert.equal(container['livenessProbe']['httpGet']['path'], '/live');
    assert.equal(containerPort(container['readinessProbe']['httpGet']['port']), adminPort);
    assert.equal(containerPort(container['livenessProbe']['httpGet']['port']), adminPort);
    assert.notEqual(config['admin']['host'], '127.0.0.1', 'probes come from the kubelet, not loopback');
    assert.ok(container['resources']['requests']['cpu'] !== undefined && container['resources']['requests']['memory'] !== undefined);
    assert.equal(pod['securityContext']['runAsNonRoot'], true);
    assert.ok(pod['securityContext']['runAsUser'] > 0);
    assert.equal(container['securityContext']['readOnlyRootFilesystem'], true);
    assert.equal(container['securityContext']['allowPrivilegeEscalation'], false);
    // A public admin listener needs a token: it comes from a Secret, never from the manifests.
    const tokenEnv = (container['env'] as Obj[]).find((e) => e['name'] === 'SWITCHYARD_ADMIN_TOKEN');
    assert.ok(tokenEnv?.['valueFrom']?.['secretKeyRef'] !== undefined);
    // The drain fits in the pod's termination grace period.
    const graceSeconds = Number(/^(\d+)s$/.exec(config['gracePeriod'])?.[1]);
    assert.ok(pod['terminationGracePeriodSeconds'] > graceSeconds);
  });

  test('the config is mounted from the ConfigMap where --config looks', () => {
    const mount = (container['volumeMounts'] as Obj[]).find((m) => configPath.startsWith(`${m['mountPath']}/`));
    assert.ok(mount !== undefined, `a mount holding ${configPath}`);
    const volume = (pod['volumes'] as Obj[]).find((v) => v['name'] === mount['name']);
    assert.equal(volume?.['configMap']?.['name'], configMap['metadata']['name']);
    assert.equal(typeof configText, 'string');
  });

  test('Service: selects the pods and targets the config\'s listener port', () => {
    const service = only(docs, 'Service');
    const labels = deployment['spec']['template']['metadata']['labels'] as Obj;
    for (const [key, value] of Object.entries(service['spec']['selector'] as Obj)) assert.equal(labels[key], value, key);
    assert.equal(containerPort(service['spec']['ports'][0]['targetPort']), config['listeners'][0]['port']);
  });

  test('the ConfigMap config: everything but discover passes Switchyard\'s validation', () => {
    assert.ok(config['upstreams']['web']['discover']['kubernetes'] !== undefined, 'discovers from Kubernetes');
    // Until the discovery schema lands, `discover` is swapped for a backend list.
    const withBackends = structuredClone(config);
    for (const upstream of Object.values(withBackends['upstreams'] as Obj)) {
      delete upstream['discover'];
      upstream['backends'] = ['http://127.0.0.1:9'];
    }
    withEnv('SWITCHYARD_ADMIN_TOKEN', 'from-the-secret', () => parseConfigInput(withBackends));
  });

  test('the ConfigMap config, discover included, passes Switchyard\'s validation', () => {
    withEnv('SWITCHYARD_ADMIN_TOKEN', 'from-the-secret', () => parseConfigInput(config));
  });
});

describe('deploy/Dockerfile', () => {
  const text = readFileSync(join(deployDir, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const stages: { name: string; lines: string[] }[] = [];
  for (const line of lines) {
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from !== null) stages.push({ name: from[1] ?? '', lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  const runtime = stages.at(-1) as { name: string; lines: string[] };

  test('multi-stage: builds with npm ci and tsc, installs production dependencies apart', () => {
    assert.ok(stages.length >= 2);
    assert.ok(stages.some((s) => s.lines.some((l) => /^RUN npm ci\b/.test(l)) && s.lines.some((l) => /\btsc\b/.test(l))), 'a stage that compiles');
  });

  test('the runtime stage: non-root USER, only production dependencies, no sources', () => {
    const user = runtime.lines.filter((l) => /^USER\s/.test(l)).at(-1);
    assert.ok(user !== undefined && !/^USER\s+(root|0)(:|$)/.test(user), `USER ${user}`);
    assert.ok(!runtime.lines.some((l) => /^RUN npm (ci|install)\b/.test(l) && !/--omit=dev/.test(l)), 'no dev install in the runtime stage');
    const modules = runtime.lines.find((l) => /^COPY --from=(\S+) .*node_modules/.test(l));
    assert.ok(modules !== undefined, 'node_modules copied from another stage');
    const fromStage = stages.find((s) => s.name === /--from=(\S+)/.exec(modules)?.[1]);
    assert.ok(fromStage?.lines.some((l) => /^RUN npm ci .*--omit=dev/.test(l)), 'that stage installs with --omit=dev');
    assert.ok(!runtime.lines.some((l) => /^COPY (\.|src)\s/.test(l)), 'no sources in the runtime image');
  });

  test('EXPOSE the listener and admin ports of the example config; HEALTHCHECK uses /live', () => {
    const exposed = runtime.lines.filter((l) => /^EXPOSE\s/.test(l)).flatMap((l) => l.split(/\s+/).slice(1).map(Number));
    assert.ok(exposed.includes(config['listeners'][0]['port']) && exposed.includes(config['admin']['port']), `EXPOSE ${exposed.join(' ')}`);
    const healthcheck = runtime.lines.find((l) => /^HEALTHCHECK\s/.test(l));
    assert.match(healthcheck ?? '', new RegExp(`127\\.0\\.0\\.1:${config['admin']['port']}/live`));
  });
});

function withEnv(name: string, value: string, fn: () => unknown): void {
  const before = process.env[name];
  process.env[name] = value;
  try {
    fn();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}
