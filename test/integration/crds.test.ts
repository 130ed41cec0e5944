// The CRDs in crds/ as the real kube-apiserver enforces them (the global setup installs them):
// the examples are accepted, defaults are applied, every class of invalid object is refused at
// create time with a message that says what is wrong, status and printer columns work, and the
// published OpenAPI carries the descriptions `kubectl explain` shows. Creates are dry-run unless
// a test needs the object stored; stored objects live in a namespace of their own.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_PLURAL, GROUP, SERVER_PLURAL, VERSION } from '../../src/api/constants.ts';
import {
  type Condition,
  type EntraDatabaseAccess,
  type EntraDatabaseServer,
  SSL_MODES,
} from '../../src/api/types.ts';
import { adminKubeConfig, harnessInfo, uniqueName } from '../harness/context.ts';
import { API, mergePatch } from '../harness/kube.ts';

const harness = harnessInfo();

const example = <T>(file: string): T =>
  k8s.loadYaml<T>(readFileSync(new URL(`../../examples/${file}`, import.meta.url), 'utf8'));
const serverExample = example<EntraDatabaseServer>('entradatabaseserver.yaml');
const accessExample = example<EntraDatabaseAccess>('entradatabaseaccess.yaml');

/** JSON objects as sent on the wire: tests corrupt them freely, past what the types allow. */
// biome-ignore lint/suspicious/noExplicitAny: deliberately untyped, to build invalid objects
type Wire = any;

const UAMI =
  '/subscriptions/3f2504e0-4f89-41d3-9a0c-0305e82c3301/resourceGroups/orders-prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders-api';

interface Refusal {
  code: number;
  message: string;
}

/** The apiserver's refusal of a request, or a failure if it accepted it. */
async function refusal(call: Promise<unknown>): Promise<Refusal> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof k8s.ApiException)) throw error;
    const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
    return { code: error.code, message: String(body?.message ?? error.message) };
  }
  throw new Error('the apiserver accepted the object; a refusal was expected');
}

interface InvalidCase {
  what: string;
  kind: 'server' | 'access';
  /** Makes the example invalid in place. */
  edit: (object: Wire) => void;
  /** Every one must appear in the apiserver's message. */
  says: string[];
}

const invalid: InvalidCase[] = [
  // --- EntraDatabaseAccess: privileges ---
  {
    what: 'a privilege not valid on its target (SELECT on a database)',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [{ target: 'database', privileges: ['CONNECT', 'SELECT'] }];
    },
    says: [
      'spec.grants[0].privileges',
      'privilege SELECT cannot be granted on a database; valid on database: CONNECT, CREATE, TEMPORARY, ALL',
    ],
  },
  {
    what: 'a privilege not valid on its target (INSERT on sequences)',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [{ target: 'sequences', schema: 'public', privileges: ['USAGE', 'INSERT'] }];
    },
    says: ['privilege INSERT cannot be granted on sequences; valid on sequences: USAGE, SELECT, UPDATE, ALL'],
  },
  {
    what: 'a privilege outside the closed list (DROP)',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [{ target: 'tables', schema: 'public', privileges: ['DROP'] }];
    },
    says: ['spec.grants[0].privileges[0]: Unsupported value: "DROP"', 'supported values: "CONNECT"'],
  },
  {
    what: 'ALL listed with other privileges',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [{ target: 'tables', schema: 'public', privileges: ['ALL', 'SELECT'] }];
    },
    says: ['ALL already includes every privilege on its target and must be listed alone'],
  },
  {
    what: 'an empty privilege list',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [{ target: 'schema', schema: 'public', privileges: [] }];
    },
    says: ['spec.grants[0].privileges', 'should have at least 1 items'],
  },
  {
    what: 'a grant target outside the enum',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [{ target: 'views', schema: 'public', privileges: ['SELECT'] }];
    },
    says: [
      'spec.grants[0].target: Unsupported value: "views"',
      '"database", "schema", "tables", "sequences"',
    ],
  },
  {
    what: 'schema on a database grant',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [{ target: 'database', schema: 'public', privileges: ['CONNECT'] }];
    },
    says: ['spec.grants[0].schema: Forbidden: schema must not be set when target is database'],
  },
  {
    what: 'no schema on a tables grant',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [{ target: 'tables', privileges: ['SELECT'] }];
    },
    says: ['spec.grants[0].schema: Required value: schema is required when target is tables'],
  },
  {
    what: 'tables on a schema grant',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [{ target: 'schema', schema: 'public', tables: ['orders'], privileges: ['USAGE'] }];
    },
    says: ['spec.grants[0].tables: Forbidden: tables can only be listed when target is tables, not schema'],
  },
  {
    what: 'a grant without target',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [{ privileges: ['CONNECT'] }];
    },
    says: ['spec.grants[0].target: Required value'],
  },
  // --- EntraDatabaseAccess: required fields ---
  ...(['serviceAccountName', 'identity', 'serverRef', 'database'] as const).map(
    (field): InvalidCase => ({
      what: `a missing spec.${field}`,
      kind: 'access',
      edit: (o) => {
        delete o.spec[field];
      },
      says: [`spec.${field}: Required value`],
    }),
  ),
  {
    what: 'a missing identity.resourceId',
    kind: 'access',
    edit: (o) => {
      o.spec.identity = {};
    },
    says: ['spec.identity.resourceId: Required value'],
  },
  // --- EntraDatabaseAccess: resource IDs ---
  ...[
    [
      'a resource ID of another resource type',
      '/subscriptions/3f2504e0-4f89-41d3-9a0c-0305e82c3301/resourceGroups/orders-prod/providers/Microsoft.Compute/virtualMachines/orders-vm',
    ],
    [
      'a resource ID without a subscription GUID',
      '/subscriptions/orders/resourceGroups/orders-prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders-api',
    ],
    ['a client ID instead of a resource ID', '3f2504e0-4f89-41d3-9a0c-0305e82c3301'],
    ['a resource ID with a trailing child resource', `${UAMI}/federatedIdentityCredentials/x`],
  ].map(
    ([what, id]): InvalidCase => ({
      what: what as string,
      kind: 'access',
      edit: (o) => {
        o.spec.identity.resourceId = id;
      },
      says: [
        'spec.identity.resourceId',
        'identity.resourceId must be the resource ID of a user-assigned managed identity, of the form /subscriptions/<subscription-guid>/resourceGroups/<resource-group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>',
      ],
    }),
  ),
  // --- EntraDatabaseAccess: names ---
  {
    what: 'a role name with a quote and a semicolon',
    kind: 'access',
    edit: (o) => {
      o.spec.roleName = 'x"; DROP ROLE azure_pg_admin; --';
    },
    says: ['spec.roleName', 'roleName must be a PostgreSQL identifier', 'no quotes, semicolons, spaces'],
  },
  {
    what: 'a reserved role name',
    kind: 'access',
    edit: (o) => {
      o.spec.roleName = 'azure_pg_admin';
    },
    says: ['roleName "azure_pg_admin" is reserved by PostgreSQL or Azure'],
  },
  {
    what: 'a metadata.name that cannot stand in for an omitted roleName',
    kind: 'access',
    edit: (o) => {
      delete o.spec.roleName;
      o.metadata.name = 'orders.api';
    },
    says: [
      'metadata.name is used as the PostgreSQL role name when spec.roleName is omitted',
      'set spec.roleName',
    ],
  },
  {
    what: 'a bad serviceAccountName',
    kind: 'access',
    edit: (o) => {
      o.spec.serviceAccountName = 'Orders_API';
    },
    says: [
      'spec.serviceAccountName',
      'serviceAccountName must be a ServiceAccount name (DNS-1123 subdomain)',
    ],
  },
  {
    what: 'a serviceAccountName over 253 characters',
    kind: 'access',
    edit: (o) => {
      o.spec.serviceAccountName = 'a'.repeat(254);
    },
    says: ['spec.serviceAccountName: Too long: may not be more than 253'],
  },
  {
    what: 'a bad serverRef',
    kind: 'access',
    edit: (o) => {
      o.spec.serverRef = 'Orders PG';
    },
    says: ['serverRef must be the name of an EntraDatabaseServer'],
  },
  {
    what: 'a database name with a space',
    kind: 'access',
    edit: (o) => {
      o.spec.database = 'orders db';
    },
    says: ['spec.database', 'database must be a PostgreSQL identifier'],
  },
  {
    what: 'a memberOf role with a semicolon',
    kind: 'access',
    edit: (o) => {
      o.spec.memberOf = ['orders_rw;'];
    },
    says: ['spec.memberOf[0]', 'each memberOf entry must be a PostgreSQL identifier'],
  },
  {
    what: 'a table name with a dot',
    kind: 'access',
    edit: (o) => {
      o.spec.grants = [
        { target: 'tables', schema: 'public', tables: ['public.orders'], privileges: ['SELECT'] },
      ];
    },
    says: ['spec.grants[0].tables[0]', 'each tables entry must be a PostgreSQL identifier'],
  },
  {
    what: 'a deletionPolicy outside the enum',
    kind: 'access',
    edit: (o) => {
      o.spec.deletionPolicy = 'Retain';
    },
    says: ['spec.deletionPolicy: Unsupported value: "Retain"', '"Delete", "Orphan"'],
  },
  // --- EntraDatabaseAccess: ownedObjects ---
  {
    what: 'an ownedObjects policy outside the enum (Drop: data is never dropped)',
    kind: 'access',
    edit: (o) => {
      o.spec.ownedObjects = { policy: 'Drop' };
    },
    says: ['spec.ownedObjects.policy: Unsupported value: "Drop"', '"Keep", "Reassign"'],
  },
  {
    what: 'policy Reassign without reassignTo',
    kind: 'access',
    edit: (o) => {
      o.spec.ownedObjects = { policy: 'Reassign' };
    },
    says: ['spec.ownedObjects.reassignTo: Required value', 'reassignTo is required when policy is Reassign'],
  },
  ...[{ policy: 'Keep', reassignTo: 'orders_owner' }, { reassignTo: 'orders_owner' }].map(
    (ownedObjects): InvalidCase => ({
      what: `reassignTo with ${ownedObjects.policy ? 'policy Keep' : 'no policy (Keep)'}`,
      kind: 'access',
      edit: (o) => {
        o.spec.ownedObjects = ownedObjects;
      },
      says: ['spec.ownedObjects.reassignTo: Forbidden', 'reassignTo is only used with policy Reassign'],
    }),
  ),
  {
    what: 'a reassignTo role with a quote',
    kind: 'access',
    edit: (o) => {
      o.spec.ownedObjects = { policy: 'Reassign', reassignTo: 'owner"; DROP ROLE x; --' };
    },
    says: ['spec.ownedObjects.reassignTo', 'reassignTo must be a PostgreSQL identifier'],
  },
  ...['azure_pg_admin', 'Postgres', 'pg_read_all_data', 'azuresu'].map(
    (role): InvalidCase => ({
      what: `a reserved reassignTo role (${role})`,
      kind: 'access',
      edit: (o) => {
        o.spec.ownedObjects = { policy: 'Reassign', reassignTo: role };
      },
      says: ['spec.ownedObjects.reassignTo', `reassignTo "${role}" is reserved by PostgreSQL or Azure`],
    }),
  ),
  {
    what: "reassignTo naming the resource's own role (spec.roleName, in another case)",
    kind: 'access',
    edit: (o) => {
      o.spec.ownedObjects = { policy: 'Reassign', reassignTo: 'Orders-API' };
    },
    says: ['spec.ownedObjects.reassignTo', "names the resource's own role"],
  },
  {
    what: "reassignTo naming the resource's own role (metadata.name standing in)",
    kind: 'access',
    edit: (o) => {
      delete o.spec.roleName;
      o.spec.ownedObjects = { policy: 'Reassign', reassignTo: o.metadata.name };
    },
    says: ['spec.ownedObjects.reassignTo', "names the resource's own role"],
  },
  // --- EntraDatabaseServer ---
  ...(['host', 'adminRole'] as const).map(
    (field): InvalidCase => ({
      what: `a missing spec.${field}`,
      kind: 'server',
      edit: (o) => {
        delete o.spec[field];
      },
      says: [`spec.${field}: Required value`],
    }),
  ),
  {
    what: 'a host given as a URL with a port',
    kind: 'server',
    edit: (o) => {
      o.spec.host = 'postgres://orders-pg.postgres.database.azure.com:5432';
    },
    says: ['spec.host', 'host must be a DNS hostname', 'no scheme (postgres://), port'],
  },
  {
    what: 'an adminRole with a quote',
    kind: 'server',
    edit: (o) => {
      o.spec.adminRole = `entra-access"operator`;
    },
    says: ['spec.adminRole', 'adminRole must be a PostgreSQL role name'],
  },
  {
    what: 'a port out of range',
    kind: 'server',
    edit: (o) => {
      o.spec.port = 65536;
    },
    says: ['spec.port', 'should be less than or equal to 65535'],
  },
  {
    what: 'an sslMode that does not encrypt',
    kind: 'server',
    edit: (o) => {
      o.spec.sslMode = 'disable';
    },
    says: ['spec.sslMode: Unsupported value: "disable"', '"verify-full", "verify-ca", "require"'],
  },
  {
    what: 'an sslRootCertSecretRef without a namespace',
    kind: 'server',
    edit: (o) => {
      o.spec.sslRootCertSecretRef = { name: 'orders-pg-ca' };
    },
    says: ['spec.sslRootCertSecretRef.namespace: Required value'],
  },
  {
    what: 'a tokenScope that is not an https URL ending in /.default',
    kind: 'server',
    edit: (o) => {
      o.spec.tokenScope = 'https://ossrdbms-aad.database.windows.net';
    },
    says: ['spec.tokenScope', 'tokenScope must be an https URL ending in /.default'],
  },
  {
    what: '* mixed with names in allowedDatabases',
    kind: 'server',
    edit: (o) => {
      o.spec.allowedDatabases = ['*', 'orders'];
    },
    says: ['spec.allowedDatabases', "'*' already allows every database and must be the only entry"],
  },
  {
    what: 'a bad database name in allowedDatabases',
    kind: 'server',
    edit: (o) => {
      o.spec.allowedDatabases = ["orders'--"];
    },
    says: ['spec.allowedDatabases[0]', "each allowedDatabases entry must be '*' or a PostgreSQL identifier"],
  },
  {
    what: 'a bad group role in allowedMemberOf',
    kind: 'server',
    edit: (o) => {
      o.spec.allowedMemberOf = ['orders rw'];
    },
    says: ['spec.allowedMemberOf[0]', 'each allowedMemberOf entry must be a PostgreSQL identifier'],
  },
  {
    what: 'a bad namespace name in allowedNamespaces',
    kind: 'server',
    edit: (o) => {
      o.spec.allowedNamespaces = { names: ['Orders'] };
    },
    says: ['spec.allowedNamespaces.names[0]', 'must be a namespace name (DNS-1123 label)'],
  },
  {
    what: 'a selector requirement In without values',
    kind: 'server',
    edit: (o) => {
      o.spec.allowedNamespaces = { selector: { matchExpressions: [{ key: 'team', operator: 'In' }] } };
    },
    says: [
      'spec.allowedNamespaces.selector.matchExpressions[0].values',
      'values must be non-empty when operator is In',
    ],
  },
  {
    what: 'a selector requirement Exists with values',
    kind: 'server',
    edit: (o) => {
      o.spec.allowedNamespaces = {
        selector: { matchExpressions: [{ key: 'team', operator: 'Exists', values: ['orders'] }] },
      };
    },
    says: ['values must be empty when operator is Exists'],
  },
  {
    what: 'a selector operator outside the enum',
    kind: 'server',
    edit: (o) => {
      o.spec.allowedNamespaces = { selector: { matchExpressions: [{ key: 'team', operator: 'Equals' }] } };
    },
    says: ['operator: Unsupported value: "Equals"'],
  },
  {
    what: 'a bad matchLabels key',
    kind: 'server',
    edit: (o) => {
      o.spec.allowedNamespaces = { selector: { matchLabels: { 'team name': 'orders' } } };
    },
    says: ['spec.allowedNamespaces.selector.matchLabels', 'each matchLabels key must be a label key'],
  },
];

describe.skipIf(!harness)('CRDs in the real kube-apiserver', () => {
  let kc: k8s.KubeConfig;
  let objects: k8s.CustomObjectsApi;
  const namespace = uniqueName('crds');
  const storedServer = uniqueName('crds-pg');

  /** Dry-run creates unless `store`: the apiserver validates and defaults, and keeps nothing. */
  const createServer = (body: unknown, store = false) =>
    objects.createClusterCustomObject({
      ...API,
      plural: SERVER_PLURAL,
      body,
      ...(store ? {} : { dryRun: 'All' }),
    });
  const createAccess = (body: unknown, store = false) =>
    objects.createNamespacedCustomObject({
      ...API,
      namespace,
      plural: ACCESS_PLURAL,
      body,
      ...(store ? {} : { dryRun: 'All' }),
    });

  function exampleOf(kind: 'server' | 'access'): Wire {
    if (kind === 'server') return structuredClone(serverExample);
    const access: Wire = structuredClone(accessExample);
    access.metadata.namespace = namespace;
    return access;
  }

  /** GET on the apiserver with the admin credentials; JSON or a Table, as `accept` asks. */
  async function get(path: string, accept = 'application/json'): Promise<{ status: number; json: Wire }> {
    return send('GET', path, { accept });
  }

  /** A request to the apiserver with the admin credentials: the answer's status, JSON and warnings. */
  async function send(
    method: string,
    path: string,
    options: { accept?: string; body?: string; contentType?: string } = {},
  ): Promise<{ status: number; json: Wire; warnings: string[] }> {
    const headers: Record<string, string> = { accept: options.accept ?? 'application/json' };
    if (options.contentType) headers['content-type'] = options.contentType;
    const requestOptions: import('node:https').RequestOptions = { method, headers };
    await kc.applyToHTTPSOptions(requestOptions);
    const url = new URL(path, kc.getCurrentCluster()?.server);
    return new Promise((resolve, reject) => {
      request(url, requestOptions, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: body ? JSON.parse(body) : undefined,
            // `Warning: 299 - "<text>"` (RFC 7234), several joined with commas: the texts.
            warnings: [
              ...[res.headers.warning ?? []]
                .flat()
                .join(', ')
                .matchAll(/299 - "((?:[^"\\]|\\.)*)"/g),
            ].map((m) => (m[1] ?? '').replace(/\\(.)/g, '$1')),
          }),
        );
      })
        .on('error', reject)
        .end(options.body);
    });
  }

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    objects = kc.makeApiClient(k8s.CustomObjectsApi);
    await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await objects
      ?.deleteClusterCustomObject({
        ...API,
        plural: SERVER_PLURAL,
        name: storedServer,
      })
      .catch(() => {});
    await kc
      ?.makeApiClient(k8s.CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => {});
  });

  it('accepts both examples as they are', async () => {
    const server = (await createServer(exampleOf('server'))) as EntraDatabaseServer;
    expect(server.spec).toEqual({ ...serverExample.spec, port: 5432 });
    const access = (await createAccess(exampleOf('access'))) as EntraDatabaseAccess;
    expect(access.spec).toEqual(accessExample.spec);
  });

  it('accepts what the examples do not show: * alone, every target, an identity in lower case', async () => {
    const server = exampleOf('server');
    server.spec.allowedDatabases = ['*'];
    server.spec.allowedNamespaces = { selector: {} };
    server.spec.sslMode = 'require';
    server.spec.sslRootCertSecretRef = { name: 'pg-ca', namespace: 'entra-access-system', key: 'root.pem' };
    server.spec.adminRole = '1ops-identity';
    await createServer(server);
    const access = exampleOf('access');
    access.spec.identity.resourceId = UAMI.toLowerCase();
    access.spec.grants = [
      { target: 'database', privileges: ['ALL'] },
      { target: 'schema', schema: 'app$1', privileges: ['USAGE', 'CREATE'] },
      { target: 'tables', schema: 'public', privileges: ['SELECT', 'MAINTAIN'] },
      { target: 'sequences', schema: 'public', privileges: ['ALL'] },
    ];
    await createAccess(access);
  });

  it('accepts ownedObjects Reassign with a role, and defaults an empty ownedObjects to Keep', async () => {
    const reassign = exampleOf('access');
    reassign.spec.ownedObjects = { policy: 'Reassign', reassignTo: 'orders_owner' };
    expect(((await createAccess(reassign)) as EntraDatabaseAccess).spec.ownedObjects).toEqual({
      policy: 'Reassign',
      reassignTo: 'orders_owner',
    });
    const empty = exampleOf('access');
    empty.spec.ownedObjects = {};
    expect(((await createAccess(empty)) as EntraDatabaseAccess).spec.ownedObjects).toEqual({
      policy: 'Keep',
    });
  });

  it('accepts every sslMode of types.ts', async () => {
    for (const sslMode of SSL_MODES) {
      const server = exampleOf('server');
      server.spec.sslMode = sslMode;
      expect(((await createServer(server)) as EntraDatabaseServer).spec.sslMode).toBe(sslMode);
    }
  });

  describe('grants written in YAML, as kubectl and Helm send them', () => {
    // The apiserver reads a YAML body with sigs.k8s.io/yaml, the YAML 1.1 reader kubectl and Helm
    // convert manifests with: a bare key on is the boolean true there, and reaches the apiserver as
    // "true". That is why the field is target. Dry-run creates, so nothing is stored.
    const manifest = (grants: string): string =>
      [
        `apiVersion: ${GROUP}/${VERSION}`,
        'kind: EntraDatabaseAccess',
        'metadata:',
        '  name: yaml-grants',
        `  namespace: ${namespace}`,
        'spec:',
        '  serviceAccountName: orders-api',
        '  identity:',
        `    resourceId: ${UAMI}`,
        '  serverRef: orders-pg',
        '  database: orders',
        '  grants:',
        grants,
        '',
      ].join('\n');
    /** kubectl sends fieldValidation=Strict (its default --validate=strict); other clients get Warn. */
    const post = (grants: string, fieldValidation?: 'Strict') =>
      send(
        'POST',
        `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${ACCESS_PLURAL}?dryRun=All` +
          (fieldValidation ? `&fieldValidation=${fieldValidation}` : ''),
        { body: manifest(grants), contentType: 'application/yaml' },
      );

    it('accepts target: unquoted, as written', async () => {
      const grants = [
        '    - { target: database, privileges: [CONNECT] }',
        '    - target: tables',
        '      schema: public',
        '      tables: [orders]',
        '      privileges: [SELECT]',
      ].join('\n');
      for (const validation of [undefined, 'Strict'] as const) {
        const created = await post(grants, validation);
        expect(created.status, JSON.stringify(created.json)).toBe(201);
        expect(created.warnings).toEqual([]);
        expect(created.json.spec.grants).toEqual([
          { target: 'database', privileges: ['CONNECT'] },
          { target: 'tables', schema: 'public', tables: ['orders'], privileges: ['SELECT'] },
        ]);
      }
    });

    it.each([
      [
        'on: unquoted, which arrives as the key "true"',
        '    - { on: database, privileges: [CONNECT] }',
        'true',
      ],
      ['"on": quoted', '    - { "on": database, privileges: [CONNECT] }', 'on'],
    ])('refuses a grant that says %s instead of target', async (_, grants, key) => {
      // Neither on nor true is in the schema. kubectl's strict field validation refuses the
      // unknown key by name.
      const strict = await post(grants, 'Strict');
      expect(strict.status).toBe(400);
      expect(strict.json.message).toContain(`unknown field "spec.grants[0].${key}"`);
      // Without it the key is pruned with a warning, and the grant has no target left.
      const lax = await post(grants);
      expect(lax.status).toBe(422);
      expect(lax.json.message).toContain('spec.grants[0].target: Required value');
      expect(lax.warnings).toContain(`unknown field "spec.grants[0].${key}"`);
    });

    it('prunes on next to target (with a warning), and strict validation refuses it', async () => {
      const grants = '    - { target: database, "on": schema, privileges: [CONNECT] }';
      const lax = await post(grants);
      expect(lax.status).toBe(201);
      expect(lax.json.spec.grants).toEqual([{ target: 'database', privileges: ['CONNECT'] }]);
      expect(lax.warnings).toContain('unknown field "spec.grants[0].on"');
      const strict = await post(grants, 'Strict');
      expect(strict.status).toBe(400);
      expect(strict.json.message).toContain('unknown field "spec.grants[0].on"');
    });
  });

  it('applies the defaults: port 5432, sslMode verify-full, CA key ca.crt, deletionPolicy Delete', async () => {
    const server = (await createServer({
      apiVersion: serverExample.apiVersion,
      kind: serverExample.kind,
      metadata: { name: 'minimal' },
      spec: {
        host: 'minimal.postgres.database.azure.com',
        adminRole: 'entra-access-operator',
        sslRootCertSecretRef: { name: 'pg-ca', namespace: 'entra-access-system' },
      },
    })) as EntraDatabaseServer;
    expect(server.spec).toMatchObject({ port: 5432, sslMode: 'verify-full' });
    expect(server.spec.sslRootCertSecretRef?.key).toBe('ca.crt');
    expect(server.spec.tokenScope).toBeUndefined(); // the operator picks it from its cloud

    const access = (await createAccess({
      apiVersion: accessExample.apiVersion,
      kind: accessExample.kind,
      metadata: { name: 'minimal', namespace },
      spec: {
        serviceAccountName: 'app',
        identity: { resourceId: UAMI },
        serverRef: 'minimal',
        database: 'app',
      },
    })) as EntraDatabaseAccess;
    expect(access.spec.deletionPolicy).toBe('Delete');
    expect(access.spec.roleName).toBeUndefined(); // the controller uses metadata.name
    expect(access.spec.ownedObjects).toBeUndefined(); // Keep, applied by the controller
  });

  it.each(invalid)('refuses $what ($kind), saying what is wrong', async ({ kind, edit, says }) => {
    const object = exampleOf(kind);
    edit(object);
    const { code, message } = await refusal(kind === 'server' ? createServer(object) : createAccess(object));
    expect(code).toBe(422);
    for (const text of says) expect(message).toContain(text);
  });

  it('stores status through the status subresource and shows it in the printer columns', async () => {
    const server = exampleOf('server');
    server.metadata.name = storedServer;
    await createServer(server, true);
    const access = exampleOf('access');
    access.spec.serverRef = storedServer;
    await createAccess(access, true);

    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const condition = (type: string): Condition => ({
      type,
      status: 'True',
      reason: 'Succeeded',
      message: `${type} done`,
      observedGeneration: 1,
      lastTransitionTime: now,
    });
    const status: EntraDatabaseAccess['status'] = {
      observedGeneration: 1,
      conditions: [
        condition('IdentityResolved'),
        condition('FederatedCredentialReady'),
        condition('ServiceAccountReady'),
        condition('DatabaseRoleReady'),
        {
          ...condition('Ready'),
          message: 'role orders_api_legacy already mapped to this identity; using it',
        },
      ],
      identity: {
        clientId: '11111111-1111-1111-1111-111111111111',
        principalId: '22222222-2222-2222-2222-222222222222',
        tenantId: '33333333-3333-3333-3333-333333333333',
      },
      federatedCredential: {
        name: 'cluster-orders-orders-api',
        issuer: 'https://issuer.example/cluster',
        subject: `system:serviceaccount:${namespace}:orders-api`,
      },
      connection: {
        host: serverExample.spec.host,
        port: 5432,
        database: 'orders',
        user: 'orders_api_legacy',
        sslMode: 'verify-full',
        tokenScope: 'https://ossrdbms-aad.database.windows.net/.default',
      },
    };
    const name = accessExample.metadata.name ?? '';
    const patchStatus = (body: unknown) =>
      objects.patchNamespacedCustomObjectStatus(
        { ...API, namespace, plural: ACCESS_PLURAL, name, body },
        mergePatch,
      );
    const patched = (await patchStatus({ status })) as EntraDatabaseAccess;
    expect(patched.status).toEqual(status);

    // status.applied.grants keeps the grants as the operator wrote them, keys the schema does not
    // name included, also when read back from etcd: a grant an operator before the rename of on
    // to target recorded is still there for the new one to read and revoke (appliedGrants in
    // src/controller/database.ts).
    const applied = {
      server: storedServer,
      role: 'orders_api_legacy',
      database: 'orders',
      grants: [
        { on: 'tables', schema: 'public', tables: ['orders'], privileges: ['SELECT'] },
        { target: 'database', privileges: ['CONNECT'] },
      ],
    };
    expect(((await patchStatus({ status: { applied } })) as Wire).status.applied).toEqual(applied);
    const reread = (await objects.getNamespacedCustomObject({
      ...API,
      namespace,
      plural: ACCESS_PLURAL,
      name,
    })) as Wire;
    expect(reread.status.applied).toEqual(applied);

    const bad = await refusal(
      patchStatus({ status: { conditions: [{ ...condition('Ready'), reason: 'not camel case' }] } }),
    );
    expect(bad.message).toContain('status.conditions[0].reason');

    const table = await get(
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${ACCESS_PLURAL}/${name}`,
      'application/json;as=Table;v=v1;g=meta.k8s.io',
    );
    expect(table.status).toBe(200);
    const columns = (table.json.columnDefinitions as Array<{ name: string; priority: number }>).map((c) => [
      c.name,
      c.priority,
    ]);
    expect(columns).toEqual([
      ['Name', 0],
      ['Ready', 0],
      ['Role', 0],
      ['Server', 0],
      ['Age', 0],
      ['Message', 1],
    ]);
    const [cells] = (table.json.rows as Array<{ cells: unknown[] }>).map((r) => r.cells);
    expect(cells?.slice(0, 4)).toEqual([name, 'True', 'orders_api_legacy', storedServer]);
    expect(cells?.[5]).toBe('role orders_api_legacy already mapped to this identity; using it');

    const serverTable = await get(
      `/apis/${GROUP}/${VERSION}/${SERVER_PLURAL}/${storedServer}`,
      'application/json;as=Table;v=v1;g=meta.k8s.io',
    );
    expect((serverTable.json.columnDefinitions as Array<{ name: string }>).map((c) => c.name)).toEqual([
      'Name',
      'Ready',
      'Host',
      'Version',
      'Age',
      'Message',
    ]);
    expect(serverTable.json.rows[0].cells[2]).toBe(serverExample.spec.host);
  });

  it('publishes the field descriptions in OpenAPI v3, where kubectl explain reads them', async () => {
    const path = `/openapi/v3/apis/${GROUP}/${VERSION}`;
    const key = (kind: string) => `${GROUP.split('.').reverse().join('.')}.${VERSION}.${kind}`;
    let document: Wire;
    // The aggregated OpenAPI is rebuilt a moment after a CRD is established.
    for (const deadline = Date.now() + 30_000; ; ) {
      const response = await get(path);
      document = response.json;
      if (response.status === 200 && document?.components?.schemas?.[key('EntraDatabaseAccess')]) break;
      if (Date.now() > deadline) throw new Error(`${path} has no ${key('EntraDatabaseAccess')}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const access = document.components.schemas[key('EntraDatabaseAccess')];
    expect(access.description).toContain('log in to one database of an EntraDatabaseServer');
    expect(access.properties.spec.properties.identity.properties.resourceId.description).toContain(
      '/subscriptions/<subscription-guid>/resourceGroups/<resource-group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>',
    );
    expect(access.properties.spec.properties.grants.items.properties.privileges.description).toContain(
      'sequences: USAGE, SELECT, UPDATE, ALL',
    );
    const server = document.components.schemas[key('EntraDatabaseServer')];
    expect(server.properties.spec.properties.allowedMemberOf.description).toContain('azure_pg_admin');
  });
});
