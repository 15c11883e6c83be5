// Issue 12, deploy: the Helm chart and the compose file were never rendered nor validated, and the chart was
// unsafe with `replicas: 2`. This renders the chart with helm (built from the Go module proxy, cached in
// .cache/bin) with the default and with multi-replica values, checks every object strictly against the
// Kubernetes API types (client-go) and KEDA's ScaledObject CRD schema (from KEDA's Go module), checks the
// compose file with compose-go (the compose specification's schema), and checks that the Grafana dashboard
// asks only for metrics the code defines. Nothing here is skipped: without Go the test fails.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '@fedgate/config';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const moduleDir = __dirname;
const chart = path.join(root, 'deploy/helm/fedgate');
const cacheDir = path.join(root, '.cache', 'bin');
const HELM_VERSION = 'v4.3.2';
const KEDA = 'github.com/kedacore/keda/v2@v2.16.1';

// First run on a machine builds helm and the checker (a few minutes on 2 cores); later runs reuse them.
jest.setTimeout(20 * 60_000);

/** Builds `pkg` of the tools/deploy-check module into .cache/bin/<name> unless it is there. */
async function goBuild(name: string, pkg: string): Promise<string> {
  const binary = path.join(cacheDir, name);
  if (existsSync(binary)) return binary;
  await mkdir(cacheDir, { recursive: true });
  const partial = `${binary}.${process.pid}.partial`;
  try {
    await run('go', ['build', '-o', partial, pkg], { cwd: moduleDir, env: { ...process.env, GOFLAGS: '-buildvcs=false -mod=readonly' }, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`go build ${pkg} failed (Go and the Go module proxy are needed): ${e.stderr || e.message}`);
  }
  await rename(partial, binary);
  return binary;
}

/** The checker's cache name follows its sources and pinned modules, so a change rebuilds it. */
function checkerName(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(moduleDir).filter((f) => /\.(go|mod|sum)$/.test(f)).sort()) hash.update(file).update(readFileSync(path.join(moduleDir, file)));
  return `fedgate-deploy-check-${hash.digest('hex').slice(0, 12)}`;
}

async function kedaScaledObjectCrd(): Promise<string> {
  const { stdout } = await run('go', ['mod', 'download', '-json', KEDA], { cwd: tmpdir(), env: { ...process.env, GOFLAGS: '' } });
  const crd = path.join(JSON.parse(stdout).Dir, 'config/crd/bases/keda.sh_scaledobjects.yaml');
  if (!existsSync(crd)) throw new Error(`${crd} is missing from ${KEDA}`);
  return crd;
}

let helm: string;
let checker: string;
let crd: string;
let work: string;

beforeAll(async () => {
  [helm, checker, crd] = await Promise.all([goBuild(`helm-${HELM_VERSION}`, 'helm.sh/helm/v4/cmd/helm'), goBuild(checkerName(), '.'), kedaScaledObjectCrd()]);
  work = await mkdtemp(path.join(tmpdir(), 'fedgate-deploy-check-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const render = async (...args: string[]) => (await run(helm, ['template', 'rel', chart, ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;
const renderFailure = async (...args: string[]): Promise<string> => {
  try {
    await render(...args);
  } catch (err) {
    return (err as { stderr: string }).stderr;
  }
  throw new Error(`helm template ${args.join(' ')} rendered, but should have refused`);
};

/** Runs the checker on rendered YAML; resolves with its output, rejects with what it found. */
async function checkKube(rendered: string): Promise<string> {
  const file = path.join(work, `rendered-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, rendered);
  try {
    const { stdout } = await run('sh', ['-c', `"$0" kube -crd "$1" < "$2"`, checker, crd, file]);
    return stdout;
  } catch (err) {
    throw new Error((err as { stderr: string }).stderr);
  }
}

type K8sObject = { kind: string; apiVersion: string; metadata: { name: string }; spec?: any; data?: Record<string, string> };
const objects = (rendered: string) => parseAllDocuments(rendered).map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
const multiReplicaValues = path.join(chart, 'ci/multi-replica-values.yaml');

describe('Helm chart, rendered and validated offline', () => {
  it('with default values: every object valid; probes on the real health paths of a declared port; a PDB per service', async () => {
    const rendered = await render();
    expect(await checkKube(rendered)).toMatch(/objects valid/);
    const all = objects(rendered);
    const deployments = all.filter((o) => o.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(['rel-fedgate-chat-sync', 'rel-fedgate-federation-egress', 'rel-fedgate-federation-ingress', 'rel-fedgate-state-resolver']);
    for (const deployment of deployments) {
      const [container] = deployment.spec.template.spec.containers;
      const ports = container.ports.map((p: { name: string }) => p.name);
      for (const [probe, probePath] of [['startupProbe', '/startupz'], ['livenessProbe', '/livez'], ['readinessProbe', '/readyz']]) {
        expect(container[probe].httpGet).toEqual({ path: probePath, port: 'metrics' });
      }
      expect(ports).toContain('metrics');
    }
    const config = all.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rel-fedgate-config')!;
    expect(config.data).toMatchObject({ FEDGATE_METRICS_PORT: '9464', FEDGATE_METRICS_LISTEN_ADDRESS: '0.0.0.0' });
    const pdbs = all.filter((o) => o.kind === 'PodDisruptionBudget');
    expect(pdbs).toHaveLength(4);
    for (const deployment of deployments) {
      expect(pdbs.some((pdb) => Object.entries(pdb.spec.selector.matchLabels).every(([k, v]) => deployment.spec.template.metadata.labels[k] === v))).toBe(true);
    }
  });

  it('with several replicas, KEDA and the dashboard: every object valid, ScaledObjects against the KEDA CRD, KEDA-scaled Deployments leave replicas to it', async () => {
    const rendered = await render('-f', multiReplicaValues);
    expect(await checkKube(rendered)).toMatch(/objects valid/);
    const all = objects(rendered);
    const scaled = all.filter((o) => o.kind === 'ScaledObject');
    expect(scaled.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual(['rel-fedgate-chat-sync', 'rel-fedgate-federation-egress', 'rel-fedgate-state-resolver']);
    const stateResolver = scaled.find((s) => s.metadata.name === 'rel-fedgate-state-resolver')!;
    expect(stateResolver.spec.triggers).toHaveLength(16);
    expect(stateResolver.spec.triggers[3]).toMatchObject({ type: 'nats-jetstream', metadata: { stream: 'FEDGATE_INBOUND', consumer: 'fedgate-state-resolver-pdu-3' } });
    const deployment = (name: string) => all.find((o) => o.kind === 'Deployment' && o.metadata.name === name)!;
    expect(deployment('rel-fedgate-state-resolver').spec.replicas).toBeUndefined();
    expect(deployment('rel-fedgate-federation-ingress').spec.replicas).toBe(3);
    const policy = all.find((o) => o.kind === 'NetworkPolicy')!;
    expect(policy.spec.ingress.map((rule: { ports: Array<{ port: number }> }) => rule.ports[0]!.port)).toEqual([8008, 9464]);
    const dashboard = all.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rel-fedgate-dashboard')!;
    expect(JSON.parse(dashboard.data!['fedgate-overview.json']!)).toEqual(JSON.parse(readFileSync(path.join(chart, 'dashboards/fedgate-overview.json'), 'utf8')));
  });

  it('sets thirdPartyInvites.identityServers (a list of objects, no FEDGATE_* form): a config file every service mounts, which fedgate loads (the chart could not set it)', async () => {
    const servers = [{ serverName: 'vector.im' }, { serverName: 'id.internal:8090', baseUrl: 'http://10.0.0.5:8090' }];
    const rendered = await render('--set-json', `thirdPartyInvites.identityServers=${JSON.stringify(servers)}`, '--set', 'thirdPartyInvites.requestTimeoutMs=5000');
    expect(await checkKube(rendered)).toMatch(/objects valid/);
    const all = objects(rendered);
    const config = all.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rel-fedgate-config')!;
    const settings = all.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rel-fedgate-settings')!;
    const configFile = config.data!.FEDGATE_CONFIG!;
    for (const deployment of all.filter((o) => o.kind === 'Deployment')) {
      const { containers, volumes } = deployment.spec.template.spec;
      const mount = containers[0].volumeMounts.find((m: { mountPath: string }) => configFile.startsWith(`${m.mountPath}/`));
      expect(volumes.find((v: { name: string }) => v.name === mount?.name)).toMatchObject({ configMap: { name: 'rel-fedgate-settings' } });
    }
    // fedgate's own loader reads the rendered file, with the chart's other settings as the environment gives them.
    const dir = await mkdtemp(path.join(work, 'settings-'));
    await writeFile(path.join(dir, path.basename(configFile)), settings.data![path.basename(configFile)]!);
    const loaded = loadConfig({ env: { FEDGATE_CONFIG: path.basename(configFile), FEDGATE_SERVER_NAME: 'matrix.example.org' }, argv: [], cwd: dir });
    expect(loaded.thirdPartyInvites).toEqual({ identityServers: servers, requestTimeoutMs: 5000 });
    // The default: none trusted, still a valid file.
    const defaults = objects(await render()).find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rel-fedgate-settings')!;
    await writeFile(path.join(dir, path.basename(configFile)), defaults.data![path.basename(configFile)]!);
    expect(loadConfig({ env: { FEDGATE_CONFIG: path.basename(configFile), FEDGATE_SERVER_NAME: 'matrix.example.org' }, argv: [], cwd: dir }).thirdPartyInvites.identityServers).toEqual([]);
  });

  it.each([
    ['several egresses without leases', ['--set', 'ownership.mode=static', '--set', 'services.federationEgress.replicas=2'], /federationEgress.replicas is 2.*ownership.mode: leases/],
    ['several state-resolvers without leases', ['--set', 'ownership.mode=static', '--set', 'services.stateResolver.replicas=3'], /stateResolver.replicas is 3/],
    ['KEDA without leases', ['--set', 'ownership.mode=static', '--set', 'autoscaling.keda.enabled=true'], /keda.enabled needs ownership.mode: leases/],
    ['more state-resolvers than room partitions', ['-f', multiReplicaValues, '--set', 'autoscaling.keda.stages.stateResolver.maxReplicas=17'], /maxReplicas 17 is more than partitions.rooms 16/],
    ['an unknown ownership mode', ['--set', 'ownership.mode=lease'], /\/ownership\/mode/],
    ['a misspelt setting (values.schema.json refuses unknown keys)', ['--set', 'services.stateResolver.replicaz=2'], /additional properties 'replicaz' not allowed/],
    ['an identity server with a misspelt key', ['--set-json', 'thirdPartyInvites.identityServers=[{"servername":"vector.im"}]'], /additional properties 'servername' not allowed/],
    ['an identity server whose baseUrl is not http(s)', ['--set-json', 'thirdPartyInvites.identityServers=[{"serverName":"vector.im","baseUrl":"file:///etc/passwd"}]'], /\/thirdPartyInvites\/identityServers\/0\/baseUrl/],
    ['a replica count that is no number', ['--set-string', 'services.federationEgress.replicas=two'], /\/services\/federationEgress\/replicas/],
  ])('refuses an unsafe combination: %s', async (_name, args, message) => {
    expect(await renderFailure(...args)).toMatch(message);
  });

  it('helm lint passes with the default and the multi-replica values', async () => {
    for (const values of [[], ['-f', multiReplicaValues]]) {
      const { stdout } = await run(helm, ['lint', chart, ...values]);
      expect(stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('the checker is no rubber stamp: an unknown field, a wrong type and a ScaledObject typo are each refused', async () => {
    const rendered = await render('-f', multiReplicaValues);
    await expect(checkKube('# nothing\n')).rejects.toThrow(/no objects to check/);
    await expect(checkKube(rendered.replace('  replicas: 3\n', '  replicaz: 3\n'))).rejects.toThrow(/Deployment\/rel-fedgate-federation-ingress.*unknown field "spec.replicaz"/);
    await expect(checkKube(rendered.replace(/terminationGracePeriodSeconds: 30/, 'terminationGracePeriodSeconds: thirty'))).rejects.toThrow(/Deployment/);
    await expect(checkKube(rendered.replace(/maxReplicaCount: (\d+)/, 'maxReplicas: $1'))).rejects.toThrow(/ScaledObject\/rel-fedgate-state-resolver/);
    await expect(checkKube('apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: { name: x }\nspec: { scaleTargetRef: { name: y }, triggers: [{ type: nats-jetstream, metadata: { lagThreshold: 5 } }] }\n')).rejects.toThrow(/lagThreshold/);
  });
});

describe('compose file, validated against the compose specification', () => {
  it('deploy/compose.yaml is valid', async () => {
    const { stdout } = await run(checker, ['compose', path.join(root, 'deploy/compose.yaml')]);
    expect(stdout).toMatch(/valid: 6 services/);
  });

  it('a compose file with a wrong type is refused', async () => {
    const broken = path.join(work, 'compose.yaml');
    await writeFile(broken, (await readFile(path.join(root, 'deploy/compose.yaml'), 'utf8')).replace('interval: 10s', 'interval: [10s]'));
    await expect(run(checker, ['compose', broken])).rejects.toMatchObject({ stderr: expect.stringMatching(/interval/) });
  });
});

/** Every `fedgate_*` string literal of the code (not tests): the names metrics are registered under. */
function metricNamesInCode(): Set<string> {
  const names = new Set<string>();
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const full = path.join(dir, entry);
      if (entry === 'node_modules' || entry === 'dist') continue;
      if (statSync(full).isDirectory()) visit(full);
      else if (/\.ts$/.test(entry) && !/\.spec\.ts$/.test(entry) && !full.includes('__fixtures__')) {
        for (const match of readFileSync(full, 'utf8').matchAll(/['"`](fedgate_[a-z0-9_]+)['"`]/g)) names.add(match[1]!);
      }
    }
  };
  visit(path.join(root, 'libs'));
  visit(path.join(root, 'apps'));
  return names;
}

describe('Grafana dashboard', () => {
  it('queries only metrics the code registers (histograms by their _bucket, _sum and _count series)', () => {
    const dashboard = JSON.parse(readFileSync(path.join(chart, 'dashboards/fedgate-overview.json'), 'utf8'));
    const exprs: string[] = JSON.stringify(dashboard).match(/"expr":"(?:[^"\\]|\\.)*"/g) ?? [];
    const queried = new Set(exprs.flatMap((e) => e.match(/fedgate_[a-z0-9_]+/g) ?? []));
    expect(queried.size).toBeGreaterThan(10);
    const defined = metricNamesInCode();
    const unknown = [...queried].filter((name) => !defined.has(name) && !defined.has(name.replace(/_(bucket|sum|count)$/, '')));
    expect(unknown).toEqual([]);
    // The metrics the issue names: lag per partition, transactions in/out per destination, backoffs, dead letters, AS push latency.
    for (const name of ['fedgate_partition_lag_messages', 'fedgate_egress_transactions_total', 'fedgate_http_request_duration_seconds_count', 'fedgate_bus_dead_letters_total', 'fedgate_appservice_push_duration_seconds_bucket']) {
      expect(queried).toContain(name);
    }
  });
});
