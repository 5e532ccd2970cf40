import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { HEALTH_DEPENDENCY_TIMEOUT_MS, QUEUES } from '@ddae/contracts';
import { apiEnvSchema, workerEnvSchema } from './env.schema';

/**
 * What can be checked of infra/ without a Docker engine or a cluster (the project's machines have
 * neither): the Dockerfile's stages and what each installs, that every file it copies exists, that
 * every variable infra/ sets is one our configuration reads (or a named outside one), that the
 * values parse, and the GPU workers' Kubernetes shape.
 */
const root = path.resolve(__dirname, '../../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: unknown; secretKeyRef?: unknown };
}
interface K8sDoc {
  kind: string;
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds: number;
        containers: { image: string; env?: EnvVar[]; resources: { limits: Record<string, unknown> }; livenessProbe: { httpGet: { port: number } } }[];
      };
    };
  };
}

/** Variables that are not ours, each read by something named here. */
const OUTSIDE = new Map([
  ['NODE_ENV', 'Node.js and its libraries'],
  ['npm_config_nodedir', 'node-gyp (Node headers to compile against)'],
  ['NVIDIA_VISIBLE_DEVICES', 'the NVIDIA container runtime'],
  ['NVIDIA_DRIVER_CAPABILITIES', 'the NVIDIA container runtime'],
  ['VK_DRIVER_FILES', 'the Vulkan loader'],
]);
const OURS = new Set([...Object.keys(apiEnvSchema.shape), ...Object.keys(workerEnvSchema.shape)]);

/** Every Kubernetes manifest of infra/k8s, and its documents. */
const K8S_FILES = readdirSync(path.join(root, 'infra/k8s')).filter((f) => /\.ya?ml$/.test(f)).map((f) => `infra/k8s/${f}`);
const k8sDocs = (file: string) => parseAllDocuments(read(file)).map((d) => d.toJS() as K8sDoc & { apiVersion: string; metadata: { name: string; annotations?: Record<string, string> } });

/** The kinds infra/k8s uses, each with its model (kubernetes-models: the Kubernetes and KEDA JSON schemas, bundled). */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1 Deployment': Deployment,
  'v1 Service': Service,
  'v1 ConfigMap': ConfigMap,
  'v1 ServiceAccount': ServiceAccount,
  'rbac.authorization.k8s.io/v1 Role': Role,
  'rbac.authorization.k8s.io/v1 RoleBinding': RoleBinding,
  'keda.sh/v1alpha1 ScaledObject': ScaledObject,
};

/** A container's environment as the process would see it: a secret stands in as a URL, a field as a pod name. */
function containerEnv(env: EnvVar[] | undefined): Record<string, string> {
  return Object.fromEntries((env ?? []).map((e) => [e.name, e.value ?? (e.valueFrom?.fieldRef ? 'ddae-worker-gpu-5f7c9d-x2kqp' : e.name === 'REDIS_URL' ? 'redis://:secret@redis:6379' : 'postgresql://secret@db:5432/ddae')]));
}

/** The Dockerfile's stages in order, each with its instructions (continuation lines joined). */
function dockerStages(text: string): { name: string; from: string; lines: string[] }[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: { name: string; from: string; lines: string[] }[] = [];
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) stages.push({ from: from[1], name: from[2] ?? '', lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

/** NAME=value pairs of a stage's ENV instructions. */
function envOf(lines: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of lines.filter((l) => /^ENV\s/i.test(l))) {
    for (const m of line.slice(4).matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S+)/g)) env[m[1]] = m[2];
  }
  return env;
}

describe('deployment (infra/, checked by reading)', () => {
  const dockerfile = read('infra/Dockerfile');
  const stages = dockerStages(dockerfile);
  const stage = (name: string) => {
    const s = stages.find((x) => x.name === name);
    if (!s) throw new Error(`infra/Dockerfile has no stage "${name}" (stages: ${stages.map((x) => x.name).join(', ')})`);
    return s;
  };

  it('builds the native kernels in a build stage, and the CPU image (the default target) runs them', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'runtime', 'gpu-worker', 'cpu']);
    const build = stage('build').lines.join('\n');
    expect(build).toMatch(/apt-get install[^\n]*\bg\+\+/);
    expect(build).toMatch(/apt-get install[^\n]*\bmake\b/);
    expect(build).toMatch(/apt-get install[^\n]*\bpython3\b/);
    expect(build).toMatch(/build-native\.mjs --strict/);
    const runtime = stage('runtime').lines.join('\n');
    expect(runtime).toMatch(/apt-get install[^\n]*libopenblas0/);
    expect(runtime).toMatch(/apt-get install[^\n]*libgomp1/);
    expect(runtime).toContain('COPY --from=build /app/libs/native-kernels/build/Release/ddae_kernels.node');
    expect(stage('cpu').from).toBe('runtime');
    // The CPU image no longer claims to fall back to WebAssembly: it computes on the native kernels.
    expect(dockerfile).not.toMatch(/wasm|webassembly/i);
  });

  it('has a GPU worker target with the Vulkan loader and the graphics capability (the NVIDIA ICD is mounted only then)', () => {
    const gpu = stage('gpu-worker');
    expect(gpu.from).toBe('runtime');
    expect(gpu.lines.join('\n')).toMatch(/apt-get install[^\n]*\blibvulkan1\b/);
    const env = envOf(gpu.lines);
    expect(env.NVIDIA_DRIVER_CAPABILITIES.split(',').sort()).toEqual(['compute', 'graphics', 'utility']);
    expect(env.DDAE_BACKEND).toBe('webgpu');
    // The compiled worker (scripts/build-worker.mjs, run in the runtime stage it inherits).
    expect(gpu.lines.some((l) => /^CMD .*dist\/worker\/main\.js/.test(l))).toBe(true);
    expect(stage('runtime').lines.some((l) => /^RUN node scripts\/build-worker\.mjs/.test(l))).toBe(true);
    // Its entry point exists, is executable, and is valid shell.
    const entry = /^COPY\s+(\S+)\s+\/usr\/local\/bin\/ddae-gpu-entrypoint$/m.exec(gpu.lines.join('\n'))?.[1];
    expect(entry).toBe('infra/gpu-entrypoint.sh');
    accessSync(path.join(root, 'infra/gpu-entrypoint.sh'), constants.X_OK);
    execFileSync('sh', ['-n', path.join(root, 'infra/gpu-entrypoint.sh')]);
  });

  it('copies only files that exist, and never the host\'s node_modules or builds', () => {
    for (const s of stages) {
      for (const line of s.lines.filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))) {
        const sources = line.split(/\s+/).slice(1, -1);
        for (const src of sources) expect({ line, exists: existsSync(path.join(root, src)) }).toEqual({ line, exists: true });
      }
    }
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'libs/native-kernels/build', 'libs/db/src/generated', '.env']));
  });

  it('gives npm ci in the build stage every file its postinstall loads (prisma.config.ts and what it imports)', () => {
    // npm ci runs `prisma generate`, which loads prisma.config.ts: a module it imports that the stage
    // lacks fails the build ("Cannot find module './libs/config/src/process-env'", found by building).
    const build = stage('build').lines;
    const npmCi = build.findIndex((l) => /^RUN npm ci\b/.test(l));
    expect(npmCi).toBeGreaterThan(0);
    const copied = build
      .slice(0, npmCi)
      .filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))
      .flatMap((l) => {
        const parts = l.split(/\s+/).slice(1);
        const dest = parts.at(-1) ?? '';
        return parts.slice(0, -1).map((src) => (dest.endsWith('/') || parts.length > 2 ? path.posix.join(dest, path.posix.basename(src)) : dest));
      })
      .map((p) => path.posix.normalize(p.replace(/^\.\//, '')));
    const has = (file: string) => copied.some((c) => c === file || file.startsWith(`${c}/`));
    const needed = ['package.json', 'package-lock.json', 'scripts/prisma-generate.mjs', 'scripts/build-native.mjs', 'prisma.config.ts', 'prisma/schema.prisma', 'libs/native-kernels/binding.gyp'];
    for (const m of read('prisma.config.ts').matchAll(/from\s+'(\.[^']+)'/g)) needed.push(`${path.posix.normalize(m[1])}.ts`);
    expect(needed.filter((f) => !has(f))).toEqual([]);
  });

  it('sets only variables our configuration reads (or a named outside one), with values it accepts', () => {
    const k8s = parseAllDocuments(read('infra/k8s/worker-gpu.yaml')).map((d) => d.toJS() as K8sDoc);
    const containers = k8s.flatMap((d) => d.spec?.template?.spec?.containers ?? []);
    const compose = parse(read('infra/docker-compose.yml')) as { 'x-app': { environment: Record<string, string> }; services: Record<string, { environment?: Record<string, string> }> };
    const sets: [string, string][] = [
      ...stages.flatMap((s) => Object.keys(envOf(s.lines)).map((n): [string, string] => [n, `infra/Dockerfile (${s.name})`])),
      ...K8S_FILES.flatMap((file) => k8sDocs(file).flatMap((d) => d.spec?.template?.spec?.containers ?? []).flatMap((c) => (c.env ?? []).map((e): [string, string] => [e.name, file]))),
      ...Object.keys(compose['x-app'].environment).map((n): [string, string] => [n, 'infra/docker-compose.yml']),
    ];
    expect(sets.length).toBeGreaterThan(10);
    const unknown = sets.filter(([name]) => !OURS.has(name) && !OUTSIDE.has(name));
    expect(unknown).toEqual([]);
    // The values parse: the GPU image's and pod's worker environment (a secret stands in as a URL,
    // the pod's name as a pod name).
    const podEnv = Object.fromEntries(
      containers.flatMap((c) => c.env ?? []).map((e) => [e.name, e.value ?? (e.valueFrom?.fieldRef ? 'ddae-worker-gpu-5f7c9d-x2kqp' : 'postgresql://secret@db:5432/ddae')]),
    );
    const imageEnv = envOf(stage('runtime').lines);
    const gpuEnv = envOf(stage('gpu-worker').lines);
    const parsed = workerEnvSchema.safeParse({ ...imageEnv, ...gpuEnv, ...podEnv, REDIS_URL: 'redis://redis:6379' });
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(parsed.data).toMatchObject({ DDAE_BACKEND: 'webgpu', DDAE_GPU: 'auto', ARTIFACT_DIR: '/artifacts' });
  });

  it('runs one GPU worker per pod, with a grace period longer than the worker\'s', () => {
    const docs = parseAllDocuments(read('infra/k8s/worker-gpu.yaml'));
    for (const d of docs) expect(d.errors).toEqual([]);
    const deployment = docs.map((d) => d.toJS() as K8sDoc).find((d) => d.kind === 'Deployment');
    if (!deployment) throw new Error('infra/k8s/worker-gpu.yaml has no Deployment');
    const pod = deployment.spec.template.spec;
    expect(pod.containers).toHaveLength(1);
    const [worker] = pod.containers;
    expect(worker.image).toMatch(/^ddae-gpu-worker:/);
    expect(worker.resources.limits['nvidia.com/gpu']).toBe(1);
    const env = Object.fromEntries((worker.env ?? []).map((e) => [e.name, e.value]));
    expect(env.DDAE_BACKEND).toBe('webgpu');
    expect(env.DDAE_GPU).toBeDefined();
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(env.SHUTDOWN_GRACE_MS));
    expect(worker.livenessProbe.httpGet.port).toBe(Number(env.HEALTH_PORT));
    expect(deployment.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
  });

  it('validates every Kubernetes manifest against its kind\'s schema (Kubernetes and KEDA, offline)', () => {
    expect(K8S_FILES.sort()).toEqual(['infra/k8s/api.yaml', 'infra/k8s/keda-worker-gpu.yaml', 'infra/k8s/prometheus.yaml', 'infra/k8s/worker-gpu.yaml']);
    for (const file of K8S_FILES) {
      for (const doc of parseAllDocuments(read(file))) {
        expect([file, doc.errors]).toEqual([file, []]);
        const data = doc.toJS() as { apiVersion: string; kind: string; metadata: { name: string } };
        const Model = MODELS[`${data.apiVersion} ${data.kind}`];
        expect([file, data.kind, Boolean(Model)]).toEqual([file, data.kind, true]);
        expect(() => new Model(data as never).validate()).not.toThrow();
      }
    }
    // The validator is not a yes-man: a value of the wrong type fails.
    const bad = k8sDocs('infra/k8s/worker-gpu.yaml')[0] as unknown as { spec: { template: { spec: { terminationGracePeriodSeconds: unknown } } } };
    bad.spec.template.spec.terminationGracePeriodSeconds = '90';
    expect(() => new Deployment(bad as never).validate()).toThrow(/terminationGracePeriodSeconds must be integer/);
  });

  it('the API\'s manifest sets variables the API accepts, and is scraped where it serves /metrics', () => {
    const [api, service] = k8sDocs('infra/k8s/api.yaml');
    const [container] = api.spec.template.spec.containers as unknown as ({ env?: EnvVar[]; ports: { containerPort: number }[] } & Record<string, unknown>)[];
    const parsed = apiEnvSchema.safeParse(containerEnv(container.env));
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(parsed.data).toMatchObject({ HOST: '0.0.0.0', LOG_FORMAT: 'json' });
    const annotations = (api.spec.template as unknown as { metadata: { annotations: Record<string, string> } }).metadata.annotations;
    expect(annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(parsed.data?.PORT), 'prometheus.io/path': '/metrics' });
    expect(container.ports[0].containerPort).toBe(parsed.data?.PORT);
    expect((service as unknown as { spec: { selector: Record<string, string> } }).spec.selector).toEqual(api.spec.selector.matchLabels);
    // The Service's name is a Host the API answers to.
    expect(parsed.data?.ALLOWED_HOSTS).toContain(service.metadata.name);
  });

  it('gives the API\'s /health probes longer than /health waits for a dependency, so a slow one reads as 503, not as a probe timeout', () => {
    const [api] = k8sDocs('infra/k8s/api.yaml');
    const [container] = api.spec.template.spec.containers as unknown as Record<string, { httpGet: { path: string }; timeoutSeconds?: number }>[];
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      expect(probe.httpGet.path).toBe('/health');
      // The kubelet's default timeout is 1 s.
      expect((probe.timeoutSeconds ?? 1) * 1000).toBeGreaterThan(HEALTH_DEPENDENCY_TIMEOUT_MS);
    }
  });

  it('scales the GPU workers with KEDA on the waiting, prioritized and running jobs, and the workers are scraped on HEALTH_PORT', () => {
    const [scaled] = k8sDocs('infra/k8s/keda-worker-gpu.yaml') as unknown as {
      spec: { scaleTargetRef: { kind: string; name: string }; minReplicaCount: number; maxReplicaCount: number; triggers: { type: string; metadata: Record<string, string> }[]; advanced: { horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: number; policies: { type: string; value: number }[] } } } } };
    }[];
    const worker = k8sDocs('infra/k8s/worker-gpu.yaml').find((d) => d.kind === 'Deployment');
    expect(scaled.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: worker?.metadata.name });
    // KEDA owns the count: the Deployment does not set one to fight it with.
    expect((worker?.spec as { replicas?: number }).replicas).toBeUndefined();
    const [trigger] = scaled.spec.triggers;
    // Prometheus, not the Redis-list scaler (blind to BullMQ's prioritized sorted set).
    expect(trigger.type).toBe('prometheus');
    expect(trigger.metadata.query).toContain(`ddae_queue_jobs{queue="${QUEUES.compute}", state=~"waiting|prioritized|active"}`);
    expect(trigger.metadata.threshold).toBe('1');
    const down = scaled.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown;
    expect(down.stabilizationWindowSeconds).toBeGreaterThanOrEqual(300);
    expect(down.policies).toEqual([expect.objectContaining({ type: 'Pods', value: 1 })]);
    const pod = worker?.spec.template as unknown as { metadata: { annotations: Record<string, string> }; spec: { containers: { env?: EnvVar[]; ports: { containerPort: number }[] }[]; terminationGracePeriodSeconds: number } };
    const env = workerEnvSchema.parse({ ...containerEnv(pod.spec.containers[0].env) });
    expect(pod.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(env.HEALTH_PORT), 'prometheus.io/path': '/metrics' });
    expect(pod.spec.containers[0].ports[0].containerPort).toBe(env.HEALTH_PORT);
    // A busy pod chosen for removal has time to checkpoint and hand its job back before SIGKILL.
    expect(pod.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(env.SHUTDOWN_GRACE_MS + 10_000);
  });

  it('points KEDA at a Prometheus the manifests ship, which may discover and scrapes the annotated pods', () => {
    type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } } & Record<string, unknown>;
    const all = K8S_FILES.flatMap((file) => k8sDocs(file) as unknown as Doc[]);
    const named = (kind: string, name: string) => {
      const found = all.find((d) => d.kind === kind && d.metadata.name === name);
      if (!found) throw new Error(`infra/k8s defines no ${kind} "${name}" (${kind}s: ${all.filter((d) => d.kind === kind).map((d) => d.metadata.name).join(', ') || 'none'})`);
      return found;
    };
    // Nothing names a namespace: everything goes where `kubectl apply` puts it, `default` as written.
    expect(all.filter((d) => d.metadata.namespace !== undefined).map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([]);
    const ns = 'default';

    // serverAddress http://<service>.<namespace>.svc:<port>: a Service of these manifests, on one of its ports.
    const [scaled] = k8sDocs('infra/k8s/keda-worker-gpu.yaml') as unknown as { spec: { triggers: { metadata: Record<string, string> }[] } }[];
    const address = new URL(scaled.spec.triggers[0].metadata.serverAddress);
    const host = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?$/.exec(address.hostname);
    expect({ serverAddress: address.href, host: Boolean(host) }).toEqual({ serverAddress: address.href, host: true });
    const [, serviceName, serviceNs] = host as RegExpExecArray;
    expect(serviceNs).toBe(ns);
    const service = named('Service', serviceName) as unknown as { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] } };
    const wanted = Number(address.port || (address.protocol === 'https:' ? 443 : 80));
    const port = service.spec.ports.find((p) => p.port === wanted);
    expect({ serverAddress: address.href, servicePort: port?.port }).toEqual({ serverAddress: address.href, servicePort: wanted });

    // The Service selects a Deployment running Prometheus, whose named port is the one it targets.
    type PodSpec = {
      serviceAccountName?: string;
      containers: { image: string; args?: string[]; ports?: { name?: string; containerPort: number }[]; volumeMounts?: { name: string; mountPath: string }[] }[];
      volumes?: { name: string; configMap?: { name: string } }[];
    };
    const deployments = all.filter((d) => d.kind === 'Deployment') as unknown as (Doc & { spec: { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } })[];
    const selects = (labels: Record<string, string>) => Object.entries(service.spec.selector).every(([k, v]) => labels[k] === v);
    const backends = deployments.filter((d) => selects(d.spec.template.metadata.labels));
    expect(backends.map((d) => d.metadata.name)).toEqual([serviceName]);
    const pod = backends[0].spec.template.spec;
    const [prometheus] = pod.containers;
    expect(prometheus.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    const targetPort = prometheus.ports?.find((p) => p.name === port?.targetPort || p.containerPort === port?.targetPort);
    expect(targetPort?.containerPort).toBe(9090);
    expect(prometheus.args).toContain(`--web.listen-address=:${targetPort?.containerPort}`);

    // Its configuration file is the ConfigMap's, mounted where --config.file says.
    const configFile = prometheus.args?.find((a) => a.startsWith('--config.file='))?.slice('--config.file='.length) ?? '(none)';
    const mount = prometheus.volumeMounts?.find((m) => configFile.startsWith(`${m.mountPath}/`));
    const volume = pod.volumes?.find((v) => v.name === mount?.name);
    const configMap = named('ConfigMap', volume?.configMap?.name ?? '(no ConfigMap volume)') as unknown as { data: Record<string, string> };
    const config = parse(configMap.data[path.posix.basename(configFile)]) as {
      scrape_configs: { kubernetes_sd_configs?: { role: string; namespaces?: { own_namespace?: boolean } }[]; relabel_configs: { source_labels?: string[]; regex?: string; action?: string; target_label?: string }[] }[];
    };

    // It discovers the pods of its namespace: its ServiceAccount is bound to a Role that may list and watch them.
    const sa = named('ServiceAccount', pod.serviceAccountName ?? '(no serviceAccountName)');
    const binding = all.find(
      (d) => d.kind === 'RoleBinding' && (d as unknown as { subjects: { kind: string; name: string; namespace?: string }[] }).subjects.some((s) => s.kind === 'ServiceAccount' && s.name === sa.metadata.name && (s.namespace ?? ns) === ns),
    ) as unknown as { roleRef: { kind: string; name: string } } | undefined;
    expect(binding?.roleRef.kind).toBe('Role');
    const role = named('Role', binding?.roleRef.name ?? '(unbound)') as unknown as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
    expect(role.rules.some((r) => r.apiGroups.includes('') && r.resources.includes('pods') && ['list', 'watch'].every((v) => r.verbs.includes(v)))).toBe(true);
    const [job] = config.scrape_configs;
    expect(job.kubernetes_sd_configs).toEqual([{ role: 'pod', namespaces: { own_namespace: true } }]);

    // Its relabelling keeps exactly the pods annotated prometheus.io/scrape: "true" and scrapes them on the
    // port and path of their annotations: applied here to the API's and the GPU workers' pod templates.
    const relabel = (labels: Record<string, string>): Record<string, string> | undefined => {
      const out = { ...labels };
      for (const r of job.relabel_configs) {
        const value = (r.source_labels ?? []).map((l) => out[l] ?? '').join(';');
        const match = new RegExp(`^(?:${r.regex ?? '(.*)'})$`).exec(value);
        if ((r.action ?? 'replace') === 'keep') {
          if (!match) return undefined;
        } else if (match && r.target_label) {
          out[r.target_label] = ((r as { replacement?: string }).replacement ?? '$1').replace(/\$(\d)/g, (_, i: string) => match[Number(i)] ?? '');
        }
      }
      return out;
    };
    const meta = (d: (typeof deployments)[number]) => {
      const t = d.spec.template as unknown as { metadata: { labels: Record<string, string>; annotations?: Record<string, string> } };
      const sd: Record<string, string> = { __address__: '10.1.2.3:1', __meta_kubernetes_pod_ip: '10.1.2.3', __meta_kubernetes_pod_phase: 'Running', __meta_kubernetes_pod_name: `${d.metadata.name}-x2kqp` };
      for (const [k, v] of Object.entries(t.metadata.labels)) sd[`__meta_kubernetes_pod_label_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`] = v;
      for (const [k, v] of Object.entries(t.metadata.annotations ?? {})) sd[`__meta_kubernetes_pod_annotation_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`] = v;
      return sd;
    };
    const targets = Object.fromEntries(deployments.map((d) => [d.metadata.name, relabel(meta(d))]));
    expect(targets['ddae-api']).toMatchObject({ __address__: '10.1.2.3:3000', __metrics_path__: '/metrics', app: 'ddae-api' });
    expect(targets['ddae-worker-gpu']).toMatchObject({ __address__: '10.1.2.3:8080', __metrics_path__: '/metrics', app: 'ddae-worker' });
    // Prometheus does not scrape itself, and a pod that is not running is not scraped.
    expect(targets[serviceName]).toBeUndefined();
    expect(relabel({ ...meta(deployments.find((d) => d.metadata.name === 'ddae-api') as (typeof deployments)[number]), __meta_kubernetes_pod_phase: 'Pending' })).toBeUndefined();
  });
});
