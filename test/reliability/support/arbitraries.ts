// fast-check arbitraries for bad and awkward admission input: random JSON, malformed
// AdmissionReviews, and well-typed Pods, ServiceAccounts and Namespaces of random shape (label and
// annotation keys with `/` and `~`, unicode, native sidecars, env lists, unknown fields). Valid
// objects are shaped as the apiserver sends them (typed fields have their types), so the checks on
// them can be strict; junk is for "never crash, never 5xx".
import fc from 'fast-check';

/** The seed every fuzz file uses unless FUZZ_SEED is set; printed with every failure. */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261122);

/** Strings that tend to break things: JSON-pointer escapes, prototype keys, unicode, controls. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '~',
    '~0',
    '~1',
    '/',
    '//',
    'a/b/c',
    '~01',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    '-',
    '0',
    '..',
    '\u0000',
    '\u200b',
    '\ufeff',
    'раураl',
    '😀',
    '\ud800',
    'a\nb',
    '"; DROP TABLE x; --',
    `\${jndi:ldap://x}`,
    '%00',
    '\\',
    'azure.workload.identity/use',
    'entra-access.io/workload-identity',
  ),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
);

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const labelName = fc.stringMatching(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,14}[A-Za-z0-9])?$/);

/** Label and annotation keys: valid `prefix/name` ones, and ones with `~`, several `/`, unicode. */
export const mapKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: labelName },
  { weight: 3, arbitrary: fc.tuple(dnsLabel, labelName).map(([p, n]) => `${p}.io/${n}`) },
  { weight: 1, arbitrary: fc.tuple(labelName, labelName).map(([a, b]) => `${a}~${b}`) },
  { weight: 1, arbitrary: fc.tuple(labelName, labelName).map(([a, b]) => `${a}~1${b}/x~0`) },
  { weight: 1, arbitrary: fc.tuple(dnsLabel, labelName, labelName).map(([a, b, c]) => `${a}/${b}/${c}`) },
  { weight: 2, arbitrary: nastyString },
);

const mapValue: fc.Arbitrary<string> = fc.oneof(labelName, fc.constant(''), nastyString);

/** A labels or annotations map: absent, empty, or random entries. */
const stringMap = (extra: fc.Arbitrary<[string, string]> = fc.constant(['k', 'v'])) =>
  fc.option(
    fc
      .tuple(fc.dictionary(mapKey, mapValue, { maxKeys: 8 }), fc.array(extra, { maxLength: 2 }))
      .map(([map, entries]) => {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(map))
          Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
        for (const [k, v] of entries) out[k] = v;
        return out;
      }),
    { nil: undefined },
  );

/** Unknown fields a newer API (or another webhook) may have put there: must survive untouched. */
const unknownFields = fc.dictionary(fc.stringMatching(/^x[A-Za-z]{1,8}$/), fc.jsonValue({ maxDepth: 2 }), {
  maxKeys: 2,
});

const ENV_NAMES = [
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_AUTHORITY_HOST',
];

const envVar = fc.record(
  {
    name: fc.oneof(fc.constantFrom(...ENV_NAMES), fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/), nastyString),
    value: fc.oneof(fc.string({ maxLength: 10 }), nastyString),
    valueFrom: fc.constant({ fieldRef: { fieldPath: 'metadata.name' } }),
  },
  { requiredKeys: ['name'] },
);

const volumeMount = fc.record({
  name: fc.oneof(fc.constant('azure-identity-token'), labelName),
  mountPath: fc.oneof(
    fc.constant('/var/run/secrets/azure/tokens'),
    fc.constant('/data'),
    fc.string({ maxLength: 10 }),
  ),
});

const containerName = fc.oneof(fc.constantFrom('app', 'sidecar', 'init', 'debug', 'skip-me'), labelName);

const container = (extra: Record<string, fc.Arbitrary<unknown>> = {}) =>
  fc
    .tuple(
      fc.record(
        {
          name: containerName,
          image: fc.constantFrom('nginx', 'busybox:1.36', 'registry.example.com/app@sha256:00'),
          env: fc.array(envVar, { maxLength: 4 }),
          volumeMounts: fc.array(volumeMount, { maxLength: 2 }),
          args: fc.array(nastyString, { maxLength: 2 }),
          ...extra,
        },
        { requiredKeys: ['name', 'image'] },
      ),
      unknownFields,
    )
    .map(([c, unknown]) => ({ ...unknown, ...c }));

const TOKEN_EXPIRATION = 'azure.workload.identity/service-account-token-expiration';
const SKIP = 'azure.workload.identity/skip-containers';

const podAnnotationEntry: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.constantFrom<[string, string]>(
    [TOKEN_EXPIRATION, '3600'],
    [TOKEN_EXPIRATION, '86400'],
    [TOKEN_EXPIRATION, ' 7200 '],
    [TOKEN_EXPIRATION, '3599'],
    [TOKEN_EXPIRATION, '86401'],
    [TOKEN_EXPIRATION, '1e4'],
    [TOKEN_EXPIRATION, ''],
    [TOKEN_EXPIRATION, '99999999999999999999999'],
    [SKIP, 'skip-me'],
    [SKIP, ' app ; sidecar ;'],
    [SKIP, ';;'],
  ),
  fc.tuple(fc.constant(SKIP), fc.string({ maxLength: 12 })),
);

const podLabelEntry: fc.Arbitrary<[string, string]> = fc.constantFrom<[string, string]>(
  ['azure.workload.identity/use', 'true'],
  ['azure.workload.identity/use', 'false'],
  ['team', 'mine'],
  ['env', 'dev'],
  ['global', 'pod-says'],
);

/** A Pod as the apiserver would send it, of random shape. */
export const pod: fc.Arbitrary<Record<string, unknown>> = fc
  .record(
    {
      name: fc.oneof(dnsLabel, fc.constant(undefined)),
      labels: stringMap(podLabelEntry),
      annotations: stringMap(podAnnotationEntry),
      serviceAccountName: fc.option(
        fc.constantFrom('default', 'sa-plain', 'sa-client', 'sa-exp', 'sa-bad-exp', 'missing-sa'),
        {
          nil: undefined,
        },
      ),
      useLegacyServiceAccount: fc.boolean(),
      containers: fc.array(container(), { minLength: 0, maxLength: 3 }),
      initContainers: fc.option(
        fc.array(container({ restartPolicy: fc.constant('Always') }), { maxLength: 2 }),
        { nil: undefined },
      ),
      ephemeralContainers: fc.option(fc.array(container(), { maxLength: 1 }), { nil: undefined }),
      volumes: fc.option(
        fc.array(
          fc.oneof(
            fc.record({ name: fc.constant('azure-identity-token'), emptyDir: fc.constant({}) }),
            fc.record({ name: labelName, emptyDir: fc.constant({}) }),
          ),
          { maxLength: 2 },
        ),
        { nil: undefined },
      ),
      specExtra: unknownFields,
      podExtra: unknownFields,
      metaExtra: fc.option(fc.constant({ ownerReferences: [{ kind: 'ReplicaSet', name: 'rs', uid: 'u' }] }), {
        nil: undefined,
      }),
    },
    { requiredKeys: [] },
  )
  .map((p) => {
    const metadata: Record<string, unknown> = { ...(p.metaExtra ?? {}) };
    if (p.name) metadata.name = p.name;
    else metadata.generateName = 'gen-';
    if (p.labels !== undefined) metadata.labels = p.labels;
    if (p.annotations !== undefined) metadata.annotations = p.annotations;
    const spec: Record<string, unknown> = { ...p.specExtra, containers: p.containers ?? [] };
    if (p.serviceAccountName !== undefined) {
      spec[p.useLegacyServiceAccount ? 'serviceAccount' : 'serviceAccountName'] = p.serviceAccountName;
    }
    if (p.initContainers !== undefined) spec.initContainers = p.initContainers;
    if (p.ephemeralContainers !== undefined) spec.ephemeralContainers = p.ephemeralContainers;
    if (p.volumes !== undefined) spec.volumes = p.volumes;
    return { ...p.podExtra, apiVersion: 'v1', kind: 'Pod', metadata, spec };
  });

const saAnnotationEntry: fc.Arbitrary<[string, string]> = fc.constantFrom<[string, string]>(
  ['azure.workload.identity/client-id', 'user-set-client-id'],
  ['azure.workload.identity/client-id', '   '],
  ['azure.workload.identity/client-id', ''],
  ['azure.workload.identity/tenant-id', 'user-tenant'],
  ['azure.workload.identity/tenant-id', ' '],
);

/** A ServiceAccount of random shape. */
export const serviceAccount: fc.Arbitrary<Record<string, unknown>> = fc
  .record({
    name: dnsLabel,
    labels: stringMap(),
    annotations: stringMap(saAnnotationEntry),
    secrets: fc.option(fc.array(fc.record({ name: labelName }), { maxLength: 2 }), { nil: undefined }),
    automount: fc.option(fc.boolean(), { nil: undefined }),
    extra: unknownFields,
  })
  .map((s) => {
    const metadata: Record<string, unknown> = { name: s.name };
    if (s.labels !== undefined) metadata.labels = s.labels;
    if (s.annotations !== undefined) metadata.annotations = s.annotations;
    const out: Record<string, unknown> = { ...s.extra, apiVersion: 'v1', kind: 'ServiceAccount', metadata };
    if (s.secrets !== undefined) out.secrets = s.secrets;
    if (s.automount !== undefined) out.automountServiceAccountToken = s.automount;
    return out;
  });

const nsAnnotationEntry: fc.Arbitrary<[string, string]> = fc.constantFrom<[string, string]>(
  ['entra-access.io/workload-identity', 'enabled'],
  ['entra-access.io/workload-identity', 'enabled'],
  ['entra-access.io/workload-identity', 'Enabled'],
  ['entra-access.io/workload-identity', 'disabled'],
  ['entra-access.io/extra-pod-labels', 'a=1,bad key=2,,c=3=4'],
  ['entra-access.io/client-id', 'ns-default'],
);
const nsLabelEntry: fc.Arbitrary<[string, string]> = fc.constantFrom<[string, string]>(
  ['entra-access.io/workload-identity', 'enabled'],
  ['entra-access.io/workload-identity', 'something-else'],
  ['entra-access.io/workload-identity', ''],
  ['kubernetes.io/metadata.name', 'x'],
);

/** A Namespace of random shape. */
export const namespace: fc.Arbitrary<Record<string, unknown>> = fc
  .record({
    name: dnsLabel,
    labels: stringMap(nsLabelEntry),
    annotations: stringMap(nsAnnotationEntry),
    finalizers: fc.option(fc.constant({ finalizers: ['kubernetes'] }), { nil: undefined }),
    extra: unknownFields,
  })
  .map((n) => {
    const metadata: Record<string, unknown> = { name: n.name };
    if (n.labels !== undefined) metadata.labels = n.labels;
    if (n.annotations !== undefined) metadata.annotations = n.annotations;
    const out: Record<string, unknown> = { ...n.extra, apiVersion: 'v1', kind: 'Namespace', metadata };
    if (n.finalizers !== undefined) out.spec = n.finalizers;
    return out;
  });

/** Any JSON value at all, with awkward keys. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.dictionary(nastyString, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }),
);

/**
 * An AdmissionReview envelope that may be wrong in any one or several ways: apiVersion, kind,
 * request missing or not an object, uid missing/empty/not a string, request.kind wrong, operation
 * unknown, namespace/name of the wrong type, object missing or junk.
 */
export const review = (objectArb: fc.Arbitrary<unknown>, kinds: readonly string[]) =>
  fc
    .record({
      apiVersion: fc.oneof(
        { weight: 6, arbitrary: fc.constant('admission.k8s.io/v1') },
        { weight: 1, arbitrary: fc.constantFrom('admission.k8s.io/v1beta1', 'v1', '', undefined, 1, null) },
      ),
      kind: fc.oneof(
        { weight: 6, arbitrary: fc.constant('AdmissionReview') },
        { weight: 1, arbitrary: fc.constantFrom('AdmissionResponse', 'Pod', undefined, {}, []) },
      ),
      requestShape: fc.oneof(
        { weight: 8, arbitrary: fc.constant('object') },
        { weight: 1, arbitrary: fc.constantFrom('missing', 'null', 'array', 'string') },
      ),
      uid: fc.oneof(
        { weight: 8, arbitrary: fc.uuid() },
        { weight: 1, arbitrary: fc.constantFrom(undefined, '', 0, null, { a: 1 }) },
        { weight: 1, arbitrary: nastyString },
      ),
      gvk: fc.oneof(
        {
          weight: 6,
          arbitrary: fc.constantFrom(...kinds).map((kind) => ({ group: '', version: 'v1', kind })),
        },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            { group: 'apps', version: 'v1', kind: 'Deployment' },
            { group: '', version: 'v2', kind: 'Pod' },
            { group: '', version: 'v1', kind: 'Secret' },
            { group: '', version: 'v1' },
            { kind: 'Pod' },
            'Pod',
            undefined,
          ),
        },
      ),
      operation: fc.oneof(
        { weight: 6, arbitrary: fc.constant('CREATE') },
        { weight: 2, arbitrary: fc.constantFrom('UPDATE', 'DELETE', 'CONNECT') },
        { weight: 1, arbitrary: fc.constantFrom('create', 'PATCH', '', undefined, 7) },
      ),
      namespace: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom('NS_ON', 'NS_NODEFAULT', 'NS_OFF', 'entra-access-system') },
        { weight: 1, arbitrary: fc.oneof(dnsLabel, nastyString) },
        { weight: 1, arbitrary: fc.constantFrom(undefined, 5, null, ['a']) },
      ),
      name: fc.option(fc.oneof(dnsLabel, nastyString, fc.constant(42)), { nil: undefined }),
      object: fc.oneof({ weight: 8, arbitrary: objectArb }, { weight: 1, arbitrary: anyJson }),
      dryRun: fc.oneof(fc.boolean(), fc.constantFrom(undefined, 'true', 1)),
      extra: fc.dictionary(nastyString, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
    })
    .map((r) => {
      const request: Record<string, unknown> = { ...r.extra };
      const set = (key: string, value: unknown): void => {
        if (value !== undefined)
          Object.defineProperty(request, key, {
            value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
      };
      set('uid', r.uid);
      set('kind', r.gvk);
      set('operation', r.operation);
      set('namespace', r.namespace);
      set('name', r.name);
      set('object', r.object);
      set('dryRun', r.dryRun);
      const body: Record<string, unknown> = {};
      if (r.apiVersion !== undefined) body.apiVersion = r.apiVersion;
      if (r.kind !== undefined) body.kind = r.kind;
      if (r.requestShape === 'object') body.request = request;
      else if (r.requestShape === 'null') body.request = null;
      else if (r.requestShape === 'array') body.request = [request];
      else if (r.requestShape === 'string') body.request = JSON.stringify(request);
      return body;
    });

/** A well-formed AdmissionReview for `object` of `kind` in `namespace`. */
export function wellFormedReview(
  uid: string,
  kind: string,
  namespace: string | undefined,
  object: Record<string, unknown>,
  operation = 'CREATE',
  dryRun = false,
): Record<string, unknown> {
  const metadata = (object.metadata ?? {}) as { name?: string };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind },
      resource: { group: '', version: 'v1', resource: `${kind.toLowerCase()}s` },
      operation,
      ...(namespace ? { namespace } : {}),
      ...(metadata.name ? { name: metadata.name } : {}),
      object,
      userInfo: { username: 'fuzz' },
      dryRun,
    },
  };
}
