// test-needs: kubectl
/**
 * The deployment files: the Kustomize base and example overlay render with `kubectl
 * kustomize`, every object validates against the Kubernetes (and Prometheus Operator)
 * schemas, and the things that matter are checked one by one; the Dockerfile starts the
 * right command as a non-root user; the Grafana dashboard only plots metrics the server has.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field below
  spec?: any;
  data?: Record<string, string>;
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

/** The metric names the server exports, as src/server/metrics.ts declares them. */
async function exportedMetrics(): Promise<Set<string>> {
  const source = await readFile(join(ROOT, 'src', 'server', 'metrics.ts'), 'utf8');
  return new Set([...source.matchAll(/'(hotocr_\w+)'/g)].map((m) => m[1]!));
}

async function render(dir: string): Promise<K8sObject[]> {
  const { stdout, stderr } = await run('kubectl', ['kustomize', join(ROOT, dir)]).catch(
    (error: Error & { stderr?: string }) => {
      throw new Error(
        `kubectl kustomize ${dir} failed (is kubectl installed?): ${error.stderr ?? error.message}`,
      );
    },
  );
  assert.doesNotMatch(stderr, /deprecated/i, `kustomize warns: ${stderr}`);
  return parseAllDocuments(stdout).map((d) => d.toJSON() as K8sObject);
}

describe('Kubernetes manifests', () => {
  test('the example overlay renders, and every object validates against its schema', async () => {
    const objects = await render('deploy/k8s/overlays/example');
    const kinds = objects.map((o) => `${o.apiVersion}/${o.kind}`).sort();
    assert.deepEqual(kinds, [
      'apps/v1/Deployment',
      'monitoring.coreos.com/v1/PrometheusRule',
      'monitoring.coreos.com/v1/ServiceMonitor',
      'policy/v1/PodDisruptionBudget',
      'v1/ConfigMap',
      'v1/Namespace',
      'v1/Service',
      'v1/Service',
    ]);
    for (const o of objects) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`]!;
      assert.doesNotThrow(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name}`);
      if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'models', `${o.kind} namespace`);
    }
    // The schemas do refuse: the same Deployment with a wrong type, or without a required field.
    // (Unknown fields pass, as they do in Kubernetes' own schemas: the field checks below cover them.)
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const Deployment = MODELS['apps/v1/Deployment']!;
    const broken = structuredClone(deployment) as unknown as { spec: Record<string, unknown> };
    broken.spec.replicas = 'three';
    assert.throws(() => new Deployment(broken as never).validate());
    const partial = structuredClone(deployment) as unknown as { spec: Record<string, unknown> };
    delete partial.spec.selector;
    assert.throws(() => new Deployment(partial as never).validate());
  });

  test('probes, secrets, resources, security and the fleet wiring are as documented', async () => {
    const objects = await render('deploy/k8s/overlays/example');
    const find = (kind: string, name: string) =>
      objects.find((o) => o.kind === kind && o.metadata.name === name)!;
    const deployment = find('Deployment', 'hotocr');
    assert.equal(deployment.spec.replicas, 3);
    const pod = deployment.spec.template.spec;
    const c = pod.containers[0];
    assert.equal(c.image, 'registry.example.com/platform/hotocr:0.1.0');
    assert.deepEqual(c.args, ['serve']);
    const port = c.ports.find((p: { name: string }) => p.name === 'http').containerPort;
    const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    assert.equal(Number(env.HOTOCR_PORT), port);
    // Probes on the server's own endpoints and port.
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe])
      assert.equal(probe.httpGet.port, 'http');
    // Secrets mounted where the environment says, never inlined.
    const mounts = new Map(
      c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]),
    );
    const secretOf = (volume: string) =>
      pod.volumes.find((v: { name: string }) => v.name === volume)?.secret?.secretName as string | undefined;
    assert.equal(secretOf('trust'), 'hotocr-trust');
    assert.equal(secretOf('admin-token'), 'hotocr-admin-token');
    assert.equal(secretOf('webhook-secret'), 'hotocr-webhook-secret');
    assert.ok(env.HOTOCR_TRUST.startsWith(mounts.get('trust')));
    assert.ok(env.HOTOCR_ADMIN_TOKEN_FILE.startsWith(mounts.get('admin-token')));
    assert.ok(env.HOTOCR_REGISTRY_WEBHOOK_SECRET_FILE.startsWith(mounts.get('webhook-secret')));
    assert.ok(env.HOTOCR_HOME.startsWith(mounts.get('data')), 'the data folder is a writable volume');
    assert.ok(!JSON.stringify(objects).includes('HOTOCR_ADMIN_TOKEN"'), 'no token inlined');
    // Resources and a locked-down container.
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.notEqual(pod.securityContext.runAsUser, 0);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    // The registry to follow and the fleet's headless Service, from the ConfigMap.
    const config = find('ConfigMap', 'hotocr-config').data!;
    assert.equal(c.envFrom[0].configMapRef.name, 'hotocr-config');
    assert.equal(config.HOTOCR_REGISTRY, 'registry.example.com/models/ppocr:stable');
    const headless = find('Service', 'hotocr-headless');
    assert.equal(headless.spec.clusterIP, 'None');
    assert.equal(config.HOTOCR_PEERS_DNS, `${headless.metadata.name}:${headless.spec.ports[0].port}`);
    // Every selector picks the pods.
    const labels = deployment.spec.template.metadata.labels;
    const selects = (selector: Record<string, string>) =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    assert.ok(selects(deployment.spec.selector.matchLabels));
    assert.ok(selects(find('Service', 'hotocr').spec.selector));
    assert.ok(selects(headless.spec.selector));
    assert.ok(selects(find('PodDisruptionBudget', 'hotocr').spec.selector.matchLabels));
    assert.ok(find('PodDisruptionBudget', 'hotocr').spec.minAvailable >= 1);
    // Prometheus scrapes /metrics through the Service's named port.
    const monitor = find('ServiceMonitor', 'hotocr');
    const service = find('Service', 'hotocr');
    assert.ok(
      Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => service.metadata.labels?.[k] === v),
    );
    assert.equal(monitor.spec.endpoints[0].path, '/metrics');
    assert.ok(service.spec.ports.some((p: { name: string }) => p.name === monitor.spec.endpoints[0].port));
  });
});

describe('the alert rules', () => {
  test('alert on expiry, refusals, an idle model, lost threads and the registry, with metrics the server exports', async () => {
    const objects = await render('deploy/k8s/overlays/example');
    const rule = objects.find((o) => o.kind === 'PrometheusRule')!;
    const alerts = (
      rule.spec.groups as { rules: { alert: string; expr: string; labels: { severity: string } }[] }[]
    ).flatMap((g) => g.rules);
    assert.deepEqual(alerts.map((a) => a.alert).sort(), [
      'HotocrInferenceThreadsLost',
      'HotocrNoActiveVersion',
      'HotocrPackageRejectionsRising',
      'HotocrRegistryUnreachable',
      'HotocrSignerCertificateExpiringSoon',
      'HotocrTrustedKeyExpiringSoon',
    ]);
    const exported = await exportedMetrics();
    for (const a of alerts) {
      assert.ok(['warning', 'critical'].includes(a.labels.severity), a.alert);
      for (const [name] of a.expr.matchAll(/hotocr_\w+/g))
        assert.ok(
          exported.has(name.replace(/_(bucket|sum|count)$/, '')),
          `${a.alert}: ${name} is not exported`,
        );
    }
    for (const a of alerts.filter((x) => x.alert.includes('Expiring'))) assert.match(a.expr, /< 14 \* 86400/);
    // The schema refuses a rule without its expression.
    const broken = structuredClone(rule) as unknown as {
      spec: { groups: { rules: Record<string, unknown>[] }[] };
    };
    delete broken.spec.groups[0]!.rules[0]!.expr;
    assert.throws(() => new PrometheusRule(broken as never).validate());
  });
});

describe('the Dockerfile', () => {
  test('builds in stages and runs the start command of package.json as a non-root user', async () => {
    const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
    const stages = lines.filter((l) => /^FROM /i.test(l));
    assert.ok(stages.length >= 2, 'multi-stage');
    const last = lines.slice(lines.lastIndexOf(stages.at(-1)!));
    const user = last.find((l) => /^USER /i.test(l))?.split(/\s+/)[1];
    assert.ok(user, 'the final stage sets USER');
    assert.match(user!, /^[1-9]\d*(:[1-9]\d*)?$/, 'a numeric, non-root user');
    const entry = JSON.parse(
      last.find((l) => /^ENTRYPOINT /i.test(l))!.replace(/^ENTRYPOINT\s+/i, ''),
    ) as string[];
    const cmd = JSON.parse(last.find((l) => /^CMD /i.test(l))!.replace(/^CMD\s+/i, '')) as string[];
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: { start: string };
    };
    assert.equal(`MALLOC_ARENA_MAX=2 ${[...entry, ...cmd].join(' ')}`, pkg.scripts.start);
    // The allocator setting that keeps memory flat across swaps (docs/RELIABILITY.md).
    assert.ok(
      last.some((l) => /MALLOC_ARENA_MAX=2/.test(l)),
      'the image sets MALLOC_ARENA_MAX=2',
    );
    // What the command needs at run time is copied into the final stage.
    for (const needed of ['node_modules', 'dist/src', 'assets'])
      assert.ok(
        last.some((l) => l.startsWith('COPY') && l.includes(needed)),
        needed,
      );
    const ignore = await readFile(join(ROOT, '.dockerignore'), 'utf8');
    assert.match(ignore, /^node_modules$/m);
  });

  test('installs the dependencies before it copies the sources, so a source change rebuilds no native module', async () => {
    const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
    const first = lines.slice(
      0,
      lines.findIndex((l, i) => i > 0 && /^FROM /i.test(l)),
    );
    const lockCopied = first.findIndex(
      (l) => /^COPY /i.test(l) && l.includes('package-lock.json') && !l.includes(' . '),
    );
    const installed = first.findIndex((l) => /npm ci/.test(l));
    const sources = first.findIndex((l) => /^COPY \. \.$/i.test(l.trim()));
    assert.ok(lockCopied >= 0, 'package.json and the lock file are copied on their own');
    assert.ok(
      lockCopied < installed && installed < sources,
      'npm ci runs between the lock file and the sources',
    );
  });
});

describe('the Grafana dashboard', () => {
  test('parses, and plots only metrics the server exports', async () => {
    const dashboard = JSON.parse(await readFile(join(ROOT, 'deploy', 'grafana', 'hotocr.json'), 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const exported = await exportedMetrics();
    assert.ok(dashboard.panels.length >= 6);
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        for (const [name] of target.expr.matchAll(/hotocr_\w+/g)) {
          const base = name.replace(/_(bucket|sum|count)$/, '');
          assert.ok(exported.has(base), `${panel.title}: ${name} is not a metric the server exports`);
        }
      }
    }
  });
});
