// The Pod policy, case by case. Every case also checks the properties that hold for all pods:
// the input is not modified, the patch only adds (no `remove`, no `replace`), applying it changes
// no existing field, ephemeral containers are untouched, and running the policy again on the
// patched pod (a webhook reinvocation) yields an empty patch.
import { describe, expect, it } from 'vitest';
import { namespaceFacts } from '../../../src/webhook/policy/namespace.ts';
import { mutatePod } from '../../../src/webhook/policy/pod.ts';
import type {
  IdentityBinding,
  NamespaceFacts,
  PodPolicyInput,
  PodPolicySettings,
  PolicyResult,
} from '../../../src/webhook/policy/types.ts';
import { applyPatch, changedLeaves, deepFreeze } from './apply-patch.ts';

type Obj = Record<string, unknown>;

const USE = 'azure.workload.identity/use';
const SA_CLIENT = 'azure.workload.identity/client-id';
const SA_TENANT = 'azure.workload.identity/tenant-id';
const EXPIRATION = 'azure.workload.identity/service-account-token-expiration';
const SKIP = 'azure.workload.identity/skip-containers';

const BOUND_CLIENT = 'aaaaaaaa-0000-0000-0000-000000000001';
const BOUND_TENANT = 'tttttttt-0000-0000-0000-000000000001';
const DEFAULT_CLIENT = 'dddddddd-0000-0000-0000-000000000002';
const GLOBAL_TENANT = 'gggggggg-0000-0000-0000-000000000003';
const SA_CLIENT_ID = 'ssssssss-0000-0000-0000-000000000004';
const SA_TENANT_ID = 'ssssssss-0000-0000-0000-000000000005';
const AUTHORITY = 'https://login.microsoftonline.com/';
const TOKEN_FILE = '/var/run/secrets/azure/tokens/azure-identity-token';

const MOUNT = { name: 'azure-identity-token', mountPath: '/var/run/secrets/azure/tokens', readOnly: true };
function tokenVolume(expirationSeconds = 3600): Obj {
  return {
    name: 'azure-identity-token',
    projected: {
      sources: [
        {
          serviceAccountToken: {
            path: 'azure-identity-token',
            audience: 'api://AzureADTokenExchange',
            expirationSeconds,
          },
        },
      ],
    },
  };
}
/** The injected env; `tenant: null` means no AZURE_TENANT_ID. */
function env(client = BOUND_CLIENT, tenant: string | null = BOUND_TENANT): Obj[] {
  return [
    { name: 'AZURE_CLIENT_ID', value: client },
    ...(tenant === null ? [] : [{ name: 'AZURE_TENANT_ID', value: tenant }]),
    { name: 'AZURE_FEDERATED_TOKEN_FILE', value: TOKEN_FILE },
    { name: 'AZURE_AUTHORITY_HOST', value: AUTHORITY },
  ];
}

function namespace(annotations: Record<string, string> = {}, optedIn = true): NamespaceFacts {
  const optIn: Record<string, string> = optedIn ? { 'entra-access.io/workload-identity': 'enabled' } : {};
  return namespaceFacts({ metadata: { name: 'team-a', annotations: { ...optIn, ...annotations } } });
}
const binding: IdentityBinding = { clientId: BOUND_CLIENT, tenantId: BOUND_TENANT, source: 'team-a/orders' };

function serviceAccount(annotations?: Record<string, string>, name = 'orders-api'): Obj {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name, ...(annotations ? { annotations } : {}) },
  };
}
function pod(spec: Obj, metadata: Obj = { name: 'web', labels: { app: 'web' } }): Obj {
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec };
}
function app(extra: Obj = {}): Obj {
  return { name: 'app', image: 'registry.example/app:1', ...extra };
}

type Overrides = Partial<Omit<PodPolicyInput, 'settings'>> & { settings?: Partial<PodPolicySettings> };
/** Defaults: opted-in namespace, a bound service account without annotations, inject mode. */
function input(over: Overrides): PodPolicyInput {
  const { settings, ...rest } = over;
  return {
    pod: pod({ serviceAccountName: 'orders-api', containers: [app()] }),
    namespace: namespace(),
    serviceAccount: serviceAccount(),
    binding,
    ...rest,
    settings: {
      mode: 'inject',
      extraPodLabels: {},
      tenantId: GLOBAL_TENANT,
      authorityHost: AUTHORITY,
      ...settings,
    },
  };
}

interface PodCase {
  name: string;
  input: PodPolicyInput;
  /** Empty patch, no warnings, not denied. */
  untouched?: boolean;
  /** Patterns the deny message must match (it always names the annotation and the bounds). */
  denied?: RegExp[];
  /** metadata.labels after the patch. */
  labels?: Obj;
  /** Container name → its env after the patch (undefined: no env). */
  env?: Record<string, Obj[] | undefined>;
  /** Container name → its volumeMounts after the patch (undefined: none). */
  mounts?: Record<string, Obj[] | undefined>;
  /** spec.volumes after the patch (undefined: none). */
  volumes?: Obj[] | undefined;
  /** The exact patch paths, in order. */
  paths?: string[];
  warnings?: RegExp[];
  /** Existing leaves the patch is meant to change (JSON Pointers); nothing else may change. */
  changes?: string[];
  check?: (after: Obj, result: PolicyResult) => void;
}

function containerNamed(p: Obj, name: string): Obj {
  const spec = p.spec as Obj;
  for (const list of ['initContainers', 'containers', 'ephemeralContainers']) {
    const found = ((spec[list] as Obj[] | undefined) ?? []).find((c) => c.name === name);
    if (found) return found;
  }
  throw new Error(`no container ${name}`);
}

const cases: PodCase[] = [
  // --- when the pod is left alone ---
  {
    name: 'namespace not opted in: untouched',
    input: input({ namespace: namespace({ 'entra-access.io/client-id': DEFAULT_CLIENT }, false) }),
    untouched: true,
  },
  {
    name: 'no binding, no namespace default, SA without client-id: untouched',
    input: input({ binding: undefined }),
    untouched: true,
  },
  {
    name: 'no binding, no namespace default, no service account found: untouched',
    input: input({ binding: undefined, serviceAccount: undefined }),
    untouched: true,
  },
  {
    name: 'the pod opts out with use=false: untouched, label kept',
    input: input({ pod: pod({ containers: [app()] }, { name: 'web', labels: { [USE]: 'false' } }) }),
    untouched: true,
  },

  // --- labels ---
  {
    name: 'label mode: the use label is added and nothing else',
    input: input({ settings: { mode: 'label' } }),
    labels: { app: 'web', [USE]: 'true' },
    paths: ['/metadata/labels/azure.workload.identity~1use'],
    env: { app: undefined },
    mounts: { app: undefined },
    volumes: undefined,
  },
  {
    name: 'label mode, no labels or annotations map: the labels map is added whole',
    input: input({
      pod: pod({ containers: [app()] }, { generateName: 'web-' }),
      settings: { mode: 'label' },
    }),
    paths: ['/metadata/labels'],
    labels: { [USE]: 'true' },
    check: (after) => expect((after.metadata as Obj).annotations).toBeUndefined(),
  },
  {
    name: 'labels null: the map is added whole',
    input: input({
      pod: pod({ containers: [app()] }, { name: 'web', labels: null }),
      settings: { mode: 'label' },
    }),
    paths: ['/metadata/labels'],
    labels: { [USE]: 'true' },
    changes: ['/metadata/labels'],
  },
  {
    name: 'no metadata at all: metadata is added with the labels',
    input: input({ pod: { spec: { containers: [app()] } }, settings: { mode: 'label' } }),
    paths: ['/metadata'],
    labels: { [USE]: 'true' },
  },
  {
    name: 'the use label already "true": no label operation',
    input: input({
      pod: pod({ containers: [app()] }, { name: 'web', labels: { [USE]: 'true' } }),
      settings: { mode: 'label' },
    }),
    untouched: true,
  },
  {
    name: 'global and namespace extra labels merged; namespace wins on the same key',
    input: input({
      namespace: namespace({ 'entra-access.io/extra-pod-labels': 'tier=ns,team=orders' }),
      settings: { mode: 'label', extraPodLabels: { tier: 'global', 'example.com/owner': 'platform' } },
    }),
    labels: { app: 'web', [USE]: 'true', tier: 'ns', team: 'orders', 'example.com/owner': 'platform' },
    paths: [
      '/metadata/labels/azure.workload.identity~1use',
      '/metadata/labels/tier',
      '/metadata/labels/team',
      '/metadata/labels/example.com~1owner',
    ],
  },
  {
    name: 'an existing label value is never overwritten by extra labels',
    input: input({
      pod: pod({ containers: [app()] }, { name: 'web', labels: { app: 'web', team: 'mine', owner: '' } }),
      namespace: namespace({ 'entra-access.io/extra-pod-labels': 'team=theirs,owner=x' }),
      settings: { mode: 'label', extraPodLabels: { app: 'other' } },
    }),
    labels: { app: 'web', team: 'mine', owner: '', [USE]: 'true' },
  },
  {
    name: 'an invalid namespace extra label is skipped and returned as a warning',
    input: input({
      namespace: namespace({ 'entra-access.io/extra-pod-labels': 'good=1,Bad Key=x,bad-value=-x' }),
      settings: { mode: 'label' },
    }),
    labels: { app: 'web', [USE]: 'true', good: '1' },
    warnings: [/team-a.*entry "Bad Key=x"/, /team-a.*entry "bad-value=-x"/],
  },
  {
    name: 'an extra label cannot change the use label; it is ignored with a warning',
    input: input({
      namespace: namespace({ 'entra-access.io/extra-pod-labels': `${USE}=false,team=a` }),
      settings: { mode: 'label' },
    }),
    labels: { app: 'web', [USE]: 'true', team: 'a' },
    warnings: [/azure.workload.identity\/use=false ignored/],
  },
  {
    name: 'a label key named like an Object.prototype member is added',
    input: input({ settings: { mode: 'label', extraPodLabels: { constructor: 'x' } } }),
    labels: { app: 'web', [USE]: 'true', constructor: 'x' },
  },

  // --- which identity, and where it comes from ---
  {
    name: 'generateName pod (no name) is mutated like any other',
    input: input({
      pod: pod(
        { serviceAccountName: 'orders-api', containers: [app()] },
        { generateName: 'web-7d9f-', labels: {} },
      ),
    }),
    labels: { [USE]: 'true' },
    env: { app: env() },
  },
  {
    name: "empty serviceAccountName: the policy uses the SA it is given (the caller looked up 'default')",
    input: input({
      pod: pod({ containers: [app()] }),
      binding: undefined,
      serviceAccount: serviceAccount({ [SA_CLIENT]: SA_CLIENT_ID }, 'default'),
    }),
    labels: { app: 'web', [USE]: 'true' },
    env: { app: env(SA_CLIENT_ID, GLOBAL_TENANT) },
  },
  {
    name: 'enabled by the namespace default client id alone',
    input: input({
      binding: undefined,
      namespace: namespace({ 'entra-access.io/client-id': DEFAULT_CLIENT }),
    }),
    env: { app: env(DEFAULT_CLIENT, GLOBAL_TENANT) },
  },
  {
    name: 'the binding wins over the namespace default',
    input: input({ namespace: namespace({ 'entra-access.io/client-id': DEFAULT_CLIENT }) }),
    env: { app: env(BOUND_CLIENT, BOUND_TENANT) },
  },
  {
    name: "the SA's client-id and tenant-id annotations win over the binding",
    input: input({
      serviceAccount: serviceAccount({ [SA_CLIENT]: SA_CLIENT_ID, [SA_TENANT]: SA_TENANT_ID }),
    }),
    env: { app: env(SA_CLIENT_ID, SA_TENANT_ID) },
  },
  {
    name: 'empty tenant id everywhere: AZURE_TENANT_ID is not added',
    input: input({
      binding: undefined,
      namespace: namespace({ 'entra-access.io/client-id': DEFAULT_CLIENT }),
      settings: { tenantId: '' },
    }),
    env: { app: env(DEFAULT_CLIENT, null) },
  },
  {
    name: 'empty authority host: AZURE_AUTHORITY_HOST is not added',
    input: input({ settings: { authorityHost: '' } }),
    env: {
      app: [
        { name: 'AZURE_CLIENT_ID', value: BOUND_CLIENT },
        { name: 'AZURE_TENANT_ID', value: BOUND_TENANT },
        { name: 'AZURE_FEDERATED_TOKEN_FILE', value: TOKEN_FILE },
      ],
    },
  },

  // --- injection ---
  {
    name: 'inject: missing env, volumeMounts and volumes arrays are added whole',
    input: input({}),
    paths: [
      '/metadata/labels/azure.workload.identity~1use',
      '/spec/containers/0/env',
      '/spec/containers/0/volumeMounts',
      '/spec/volumes',
    ],
    labels: { app: 'web', [USE]: 'true' },
    env: { app: env() },
    mounts: { app: [MOUNT] },
    volumes: [tokenVolume()],
  },
  {
    name: 'inject: existing arrays are appended to with /-, existing entries kept in place',
    input: input({
      pod: pod({
        containers: [
          app({
            env: [{ name: 'LOG_LEVEL', value: 'debug' }],
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
          }),
        ],
        volumes: [{ name: 'data', emptyDir: {} }],
      }),
    }),
    paths: [
      '/metadata/labels/azure.workload.identity~1use',
      '/spec/containers/0/env/-',
      '/spec/containers/0/env/-',
      '/spec/containers/0/env/-',
      '/spec/containers/0/env/-',
      '/spec/containers/0/volumeMounts/-',
      '/spec/volumes/-',
    ],
    env: { app: [{ name: 'LOG_LEVEL', value: 'debug' }, ...env()] },
    mounts: { app: [{ name: 'data', mountPath: '/data' }, MOUNT] },
    volumes: [{ name: 'data', emptyDir: {} }, tokenVolume()],
  },
  {
    name: 'init containers are injected; a native sidecar keeps restartPolicy: Always; unknown fields kept',
    input: input({
      pod: pod({
        futureSpecField: { enabled: true },
        initContainers: [
          { name: 'migrate', image: 'm:1' },
          { name: 'proxy', image: 'p:1', restartPolicy: 'Always', futureContainerField: [1, 2] },
        ],
        containers: [app({ resizePolicy: [{ resourceName: 'cpu', restartPolicy: 'NotRequired' }] })],
      }),
    }),
    env: { migrate: env(), proxy: env(), app: env() },
    mounts: { migrate: [MOUNT], proxy: [MOUNT], app: [MOUNT] },
    volumes: [tokenVolume()],
    check: (after) => {
      const proxy = containerNamed(after, 'proxy');
      expect(proxy.restartPolicy).toBe('Always');
      expect(proxy.futureContainerField).toEqual([1, 2]);
      expect((after.spec as Obj).futureSpecField).toEqual({ enabled: true });
      expect(((after.spec as Obj).initContainers as Obj[]).map((c) => c.name)).toEqual(['migrate', 'proxy']);
    },
    paths: [
      '/metadata/labels/azure.workload.identity~1use',
      '/spec/initContainers/0/env',
      '/spec/initContainers/0/volumeMounts',
      '/spec/initContainers/1/env',
      '/spec/initContainers/1/volumeMounts',
      '/spec/containers/0/env',
      '/spec/containers/0/volumeMounts',
      '/spec/volumes',
    ],
  },
  {
    name: 'skip-containers (;-separated, spaces trimmed) are left alone',
    input: input({
      pod: pod(
        {
          initContainers: [{ name: 'istio-init', image: 'i:1' }],
          containers: [app(), { name: 'istio-proxy', image: 'p:1' }, { name: 'logger', image: 'l:1' }],
        },
        { name: 'web', annotations: { [SKIP]: ' istio-proxy ; ;istio-init;not-there' } },
      ),
    }),
    env: { app: env(), logger: env(), 'istio-proxy': undefined, 'istio-init': undefined },
    mounts: { app: [MOUNT], logger: [MOUNT], 'istio-proxy': undefined, 'istio-init': undefined },
    volumes: [tokenVolume()],
  },
  {
    name: 'every container skipped: labels only, no volume',
    input: input({ pod: pod({ containers: [app()] }, { name: 'web', annotations: { [SKIP]: 'app' } }) }),
    labels: { [USE]: 'true' },
    env: { app: undefined },
    volumes: undefined,
  },
  {
    name: 'an env var the container sets is never overwritten (plain value and valueFrom)',
    input: input({
      pod: pod({
        containers: [
          app({
            env: [
              { name: 'AZURE_CLIENT_ID', value: 'mine' },
              { name: 'AZURE_TENANT_ID', valueFrom: { secretKeyRef: { name: 's', key: 'tenant' } } },
            ],
          }),
        ],
      }),
    }),
    env: {
      app: [
        { name: 'AZURE_CLIENT_ID', value: 'mine' },
        { name: 'AZURE_TENANT_ID', valueFrom: { secretKeyRef: { name: 's', key: 'tenant' } } },
        { name: 'AZURE_FEDERATED_TOKEN_FILE', value: TOKEN_FILE },
        { name: 'AZURE_AUTHORITY_HOST', value: AUTHORITY },
      ],
    },
  },
  {
    name: 'env: null is replaced by the env array',
    input: input({ pod: pod({ containers: [app({ env: null })] }) }),
    env: { app: env() },
    changes: ['/spec/containers/0/env'],
  },
  {
    name: 'a volume already named azure-identity-token is kept as it is',
    input: input({
      pod: pod(
        { containers: [app()], volumes: [tokenVolume(7200)] },
        { name: 'web', annotations: { [EXPIRATION]: '3600' } },
      ),
    }),
    volumes: [tokenVolume(7200)],
    mounts: { app: [MOUNT] },
  },
  {
    name: 'another volume mounted at the token path: no second mount, a warning, env still added',
    input: input({
      pod: pod({
        containers: [app({ volumeMounts: [{ name: 'mine', mountPath: '/var/run/secrets/azure/tokens' }] })],
      }),
    }),
    mounts: { app: [{ name: 'mine', mountPath: '/var/run/secrets/azure/tokens' }] },
    env: { app: env() },
    warnings: [/container "app" already mounts volume "mine"/],
  },
  {
    name: 'ephemeral containers are untouched',
    input: input({
      pod: pod({ containers: [app()], ephemeralContainers: [{ name: 'debugger', image: 'busybox' }] }),
    }),
    env: { app: env(), debugger: undefined },
    mounts: { app: [MOUNT], debugger: undefined },
  },

  // --- token expiration ---
  {
    name: 'expiration from the pod annotation',
    input: input({
      pod: pod({ containers: [app()] }, { name: 'web', annotations: { [EXPIRATION]: '7200' } }),
    }),
    volumes: [tokenVolume(7200)],
  },
  {
    name: "expiration from the SA's annotation when the pod has none",
    input: input({ serviceAccount: serviceAccount({ [EXPIRATION]: '86400' }) }),
    volumes: [tokenVolume(86400)],
  },
  {
    name: "the pod's expiration wins over the SA's",
    input: input({
      pod: pod({ containers: [app()] }, { name: 'web', annotations: { [EXPIRATION]: '3600' } }),
      serviceAccount: serviceAccount({ [EXPIRATION]: '86400' }),
    }),
    volumes: [tokenVolume(3600)],
  },
  ...[
    ['3599', /outside the allowed range/],
    ['86401', /outside the allowed range/],
    ['0', /outside the allowed range/],
    ['99999999999999999999', /outside the allowed range/],
    ['abc', /is not a whole number/],
    ['1h', /is not a whole number/],
    ['3600.5', /is not a whole number/],
    ['-3600', /is not a whole number/],
    ['', /is not a whole number/],
  ].map(
    ([value, why]): PodCase => ({
      name: `pod expiration "${String(value)}" is denied`,
      input: input({
        pod: pod({ containers: [app()] }, { name: 'web', annotations: { [EXPIRATION]: value as string } }),
      }),
      denied: [why as RegExp, /^pod annotation/],
    }),
  ),
  {
    name: 'a bad SA expiration denies the pod, naming the service account',
    input: input({ serviceAccount: serviceAccount({ [EXPIRATION]: '60' }) }),
    denied: [/^service account "orders-api" annotation/, /outside the allowed range/],
  },
  {
    name: 'label mode does not validate the expiration (the add-on owns injection)',
    input: input({
      pod: pod({ containers: [app()] }, { name: 'web', annotations: { [EXPIRATION]: '60' } }),
      settings: { mode: 'label' },
    }),
    labels: { [USE]: 'true' },
  },
];

describe('mutatePod', () => {
  it.each(cases)('$name', (c) => {
    deepFreeze(c.input);
    const result = mutatePod(c.input);
    const { pod: before } = c.input;

    if (c.untouched) {
      expect(result).toEqual({ patch: [], warnings: [] });
    }
    if (c.denied) {
      expect(result.patch).toEqual([]);
      expect(result.denied).toContain(EXPIRATION);
      expect(result.denied).toContain('3600');
      expect(result.denied).toContain('86400');
      for (const pattern of c.denied) expect(result.denied).toMatch(pattern);
      // A retry of the same pod is denied the same way.
      expect(mutatePod(c.input).denied).toBe(result.denied);
      return;
    }
    expect(result.denied).toBeUndefined();

    // Only additive operations, at paths the (strict) applier accepts.
    expect(result.patch.filter((operation) => operation.op !== 'add')).toEqual([]);
    const after = applyPatch(before, result.patch);
    expect(changedLeaves(before, after)).toEqual(c.changes ?? []);
    expect((after.spec as Obj | undefined)?.ephemeralContainers).toEqual(
      (before.spec as Obj | undefined)?.ephemeralContainers,
    );

    // Reinvocation on the mutated pod adds nothing.
    const again = mutatePod(deepFreeze({ ...c.input, pod: after }));
    expect(again.patch).toEqual([]);
    expect(again.denied).toBeUndefined();

    if (c.paths) expect(result.patch.map((operation) => operation.path)).toEqual(c.paths);
    if ('labels' in c) expect((after.metadata as Obj).labels).toEqual(c.labels);
    for (const [name, expected] of Object.entries(c.env ?? {})) {
      expect(containerNamed(after, name).env, `env of ${name}`).toEqual(expected);
    }
    for (const [name, expected] of Object.entries(c.mounts ?? {})) {
      expect(containerNamed(after, name).volumeMounts, `volumeMounts of ${name}`).toEqual(expected);
    }
    if ('volumes' in c) expect((after.spec as Obj).volumes).toEqual(c.volumes);
    const warnings = c.warnings ?? [];
    expect(result.warnings).toHaveLength(warnings.length);
    warnings.forEach((pattern, i) => {
      expect(result.warnings[i]).toMatch(pattern);
    });
    c.check?.(after, result);
  });

  it('the label path escapes the / of azure.workload.identity/use', () => {
    const result = mutatePod(input({ settings: { mode: 'label' } }));
    expect(result.patch).toEqual([
      { op: 'add', path: '/metadata/labels/azure.workload.identity~1use', value: 'true' },
    ]);
  });

  it('each patch value is a fresh object, so applying one patch twice never aliases', () => {
    const result = mutatePod(input({ pod: pod({ containers: [app(), { name: 'b', image: 'b' }] }) }));
    const envs = result.patch.filter((operation) => operation.path.endsWith('/env'));
    expect(envs).toHaveLength(2);
    expect((envs[0] as { value: unknown }).value).not.toBe((envs[1] as { value: unknown }).value);
  });
});
