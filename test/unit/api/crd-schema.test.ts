// The CRD YAML and src/api must not drift: names against constants.ts, closed lists and defaults
// against types.ts, and every field documented so `kubectl explain` helps. Reads repo files only;
// what the apiserver does with the schema is proved in test/integration/crds.test.ts.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_KIND,
  ACCESS_PLURAL,
  API_VERSION,
  ConditionType,
  GROUP,
  SERVER_KIND,
  SERVER_PLURAL,
  VERSION,
} from '../../../src/api/constants.ts';
import {
  ADMIN_ROLE_PATTERN,
  DEFAULT_DELETION_POLICY,
  DEFAULT_OWNED_OBJECTS_POLICY,
  DEFAULT_PORT,
  DEFAULT_SSL_MODE,
  DEFAULT_SSL_ROOT_CERT_KEY,
  DELETION_POLICIES,
  type EntraDatabaseAccess,
  type EntraDatabaseServer,
  GRANT_TARGETS,
  isPostgresIdentifier,
  isPrivilegeFor,
  isReservedRoleName,
  OWNED_OBJECTS_POLICIES,
  POSTGRES_IDENTIFIER_PATTERN,
  PRIVILEGES,
  PRIVILEGES_BY_TARGET,
  RESERVED_ROLE_NAMES,
  RESERVED_ROLE_PREFIXES,
  SSL_MODES,
  USER_ASSIGNED_IDENTITY_ID_PATTERN,
  USER_ASSIGNED_IDENTITY_ID_REGEXP,
} from '../../../src/api/types.ts';

/** A schema node in its YAML spelling (`enum`, `default`, `x-kubernetes-validations`). */
interface Schema {
  type?: string;
  description?: string;
  format?: string;
  pattern?: string;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  maxItems?: number;
  maxLength?: number;
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  'x-kubernetes-validations'?: Rule[];
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
}
interface Rule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: string;
}

const repoFile = (path: string): string => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

/**
 * loadAllYaml deserialises a CRD into the client's model, which renames schema keywords (`_enum`,
 * `x_kubernetes_validations`) down to the first field typed `any` (items) and leaves them alone
 * below it; put every node back in the YAML spelling so the checks read one shape.
 */
function yamlSpelling(node: unknown): Schema {
  if (typeof node !== 'object' || node === null) return node as Schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (value === undefined) continue;
    const name = key.startsWith('x_kubernetes_')
      ? key.replaceAll('_', '-')
      : key === '_enum' || key === '_default' || key === '_not'
        ? key.slice(1)
        : key;
    if (name === 'properties')
      out[name] = Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, yamlSpelling(v)]));
    else if (name === 'items' || (name === 'additionalProperties' && typeof value === 'object'))
      out[name] = yamlSpelling(value);
    else out[name] = value;
  }
  return out as Schema;
}

function loadCrd(file: string): k8s.V1CustomResourceDefinition {
  const docs = k8s.loadAllYaml(repoFile(`crds/${file}`));
  expect(docs).toHaveLength(1);
  return docs[0] as k8s.V1CustomResourceDefinition;
}

const serverCrd = loadCrd('entra-access.io_entradatabaseservers.yaml');
const accessCrd = loadCrd('entra-access.io_entradatabaseaccesses.yaml');

function rootSchema(crd: k8s.V1CustomResourceDefinition): Schema {
  const schema = crd.spec.versions[0]?.schema?.openAPIV3Schema;
  if (!schema) throw new Error(`${crd.metadata?.name} has no schema`);
  return yamlSpelling(schema);
}

/** The schema at a dotted path; `[]` steps into array items, e.g. `spec.grants[].privileges[]`. */
function at(crd: k8s.V1CustomResourceDefinition, path: string): Schema {
  let node = rootSchema(crd);
  for (const part of path.split('.')) {
    const name = part.replace(/\[\]$/, '');
    const next: Schema | undefined = node.properties?.[name];
    if (!next) throw new Error(`no property ${name} in ${path}`);
    node = next;
    if (part.endsWith('[]')) {
      if (!node.items) throw new Error(`${name} in ${path} has no items`);
      node = node.items;
    }
  }
  return node;
}

const rules = (schema: Schema): Rule[] => schema['x-kubernetes-validations'] ?? [];

/** Every property and array item, with its path, for whole-schema checks. */
function* walk(schema: Schema, path: string): Generator<[string, Schema]> {
  yield [path, schema];
  for (const [name, child] of Object.entries(schema.properties ?? {})) yield* walk(child, `${path}.${name}`);
  if (schema.items) yield* walk(schema.items, `${path}[]`);
  if (typeof schema.additionalProperties === 'object') yield* walk(schema.additionalProperties, `${path}{}`);
}

const ceLiteral = (values: readonly string[]): string => `[${values.map((v) => `'${v}'`).join(', ')}]`;

describe.each([
  { crd: serverCrd, kind: SERVER_KIND, plural: SERVER_PLURAL, scope: 'Cluster' },
  { crd: accessCrd, kind: ACCESS_KIND, plural: ACCESS_PLURAL, scope: 'Namespaced' },
])('$kind CRD', ({ crd, kind, plural, scope }) => {
  it('names the group, kind, plural and scope of src/api/constants.ts', () => {
    expect(crd.apiVersion).toBe('apiextensions.k8s.io/v1');
    expect(crd.kind).toBe('CustomResourceDefinition');
    expect(crd.metadata?.name).toBe(`${plural}.${GROUP}`);
    expect(crd.spec.group).toBe(GROUP);
    expect(crd.spec.scope).toBe(scope);
    expect(crd.spec.names.kind).toBe(kind);
    expect(crd.spec.names.listKind).toBe(`${kind}List`);
    expect(crd.spec.names.plural).toBe(plural);
    expect(crd.spec.names.singular).toBe(kind.toLowerCase());
  });

  it(`serves and stores only ${VERSION}, with a status subresource`, () => {
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([[VERSION, true, true]]);
    expect(crd.spec.versions[0]?.subresources?.status).toEqual({});
  });

  it('describes every field, so kubectl explain helps', () => {
    const undocumented = [...walk(rootSchema(crd), kind)]
      .filter(([path, schema]) => path !== `${kind}.metadata` && !schema.description?.trim())
      .map(([path]) => path);
    expect(undocumented).toEqual([]);
  });

  it('is structural, and bounds every list and string (CEL cost and etcd size stay small)', () => {
    const problems: string[] = [];
    for (const [path, schema] of walk(rootSchema(crd), kind)) {
      if (!/^(object|array|string|integer|boolean|number)$/.test(schema.type ?? ''))
        problems.push(`${path}: type`);
      if (schema.type === 'array' && !schema.items) problems.push(`${path}: items`);
      if (schema.type === 'array' && !schema.maxItems) problems.push(`${path}: maxItems`);
      if (
        schema.type === 'array' &&
        schema.items?.type === 'string' &&
        schema['x-kubernetes-list-type'] !== 'set'
      )
        problems.push(`${path}: listType set`);
      const free = schema.type === 'string' && schema.format !== 'date-time';
      if (free && !schema.maxLength && !/^\w+\.(apiVersion|kind)$/.test(path))
        problems.push(`${path}: maxLength`);
    }
    expect(problems).toEqual([]);
  });

  it('has the standard metav1.Condition list in status, keyed by type', () => {
    const conditions = at(crd, 'status.conditions');
    expect(conditions['x-kubernetes-list-type']).toBe('map');
    expect(conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
    const item = at(crd, 'status.conditions[]');
    expect(item.required?.slice().sort()).toEqual(
      ['lastTransitionTime', 'message', 'reason', 'status', 'type'].sort(),
    );
    expect(item.properties?.status?.enum).toEqual(['True', 'False', 'Unknown']);
    expect(item.properties?.lastTransitionTime?.format).toBe('date-time');
    expect(item.properties?.observedGeneration?.type).toBe('integer');
    const reason = new RegExp(item.properties?.reason?.pattern ?? '$^');
    expect(['IdentityNotAllowed', 'RoleOwnsObjects', 'Ready'].every((r) => reason.test(r))).toBe(true);
    expect(reason.test('not allowed')).toBe(false);
    expect(at(crd, 'status.observedGeneration').type).toBe('integer');
  });

  it('shows Ready, Age and, with -o wide, the Ready message', () => {
    const columns = crd.spec.versions[0]?.additionalPrinterColumns ?? [];
    expect(columns.find((c) => c.name === 'Ready')?.jsonPath).toBe(
      '.status.conditions[?(@.type=="Ready")].status',
    );
    expect(columns.find((c) => c.name === 'Age')).toMatchObject({
      type: 'date',
      jsonPath: '.metadata.creationTimestamp',
    });
    const message = columns.find((c) => c.name === 'Message');
    expect(message).toMatchObject({
      priority: 1,
      jsonPath: '.status.conditions[?(@.type=="Ready")].message',
    });
    expect(columns.filter((c) => c.name !== 'Message').every((c) => !c.priority)).toBe(true);
  });
});

describe('EntraDatabaseServer schema', () => {
  it('requires host and adminRole', () => {
    expect(rootSchema(serverCrd).required).toEqual(['spec']);
    expect(at(serverCrd, 'spec').required?.slice().sort()).toEqual(['adminRole', 'host']);
  });

  it('defaults port, sslMode and the CA key to the values in types.ts', () => {
    expect(at(serverCrd, 'spec.port')).toMatchObject({ default: DEFAULT_PORT, minimum: 1, maximum: 65535 });
    expect(at(serverCrd, 'spec.sslMode').enum).toEqual([...SSL_MODES]);
    expect(at(serverCrd, 'spec.sslMode').default).toBe(DEFAULT_SSL_MODE);
    // kubectl explain says what each mode checks.
    for (const mode of SSL_MODES) expect(at(serverCrd, 'spec.sslMode').description).toContain(mode);
    expect(at(serverCrd, 'spec.sslRootCertSecretRef.key').default).toBe(DEFAULT_SSL_ROOT_CERT_KEY);
    expect(at(serverCrd, 'spec.sslRootCertSecretRef').required).toEqual(['name', 'namespace']);
  });

  it('checks role and database names with the identifier patterns of types.ts', () => {
    expect(rules(at(serverCrd, 'spec.adminRole'))[0]?.rule).toBe(`self.matches('${ADMIN_ROLE_PATTERN}')`);
    expect(rules(at(serverCrd, 'spec.allowedMemberOf[]'))[0]?.rule).toBe(
      `self.matches('${POSTGRES_IDENTIFIER_PATTERN}')`,
    );
    expect(rules(at(serverCrd, 'spec.allowedDatabases[]'))[0]?.rule).toBe(
      `self == '*' || self.matches('${POSTGRES_IDENTIFIER_PATTERN}')`,
    );
    expect(rules(at(serverCrd, 'spec.allowedDatabases'))[0]?.rule).toBe("!('*' in self) || size(self) == 1");
  });

  it('takes a metav1.LabelSelector for allowed namespaces', () => {
    expect(at(serverCrd, 'spec.allowedNamespaces.selector.matchExpressions[].operator').enum).toEqual([
      'In',
      'NotIn',
      'Exists',
      'DoesNotExist',
    ]);
    expect(at(serverCrd, 'spec.allowedNamespaces.selector.matchLabels').additionalProperties).toMatchObject({
      type: 'string',
    });
  });

  it('shows Host and Version columns', () => {
    const columns = serverCrd.spec.versions[0]?.additionalPrinterColumns ?? [];
    expect(columns.map((c) => c.name)).toEqual(['Ready', 'Host', 'Version', 'Age', 'Message']);
    expect(columns.find((c) => c.name === 'Host')?.jsonPath).toBe('.spec.host');
    expect(columns.find((c) => c.name === 'Version')?.jsonPath).toBe('.status.serverVersion');
  });
});

describe('EntraDatabaseAccess schema', () => {
  it('requires serviceAccountName, identity.resourceId, serverRef and database', () => {
    expect(at(accessCrd, 'spec').required?.slice().sort()).toEqual([
      'database',
      'identity',
      'serverRef',
      'serviceAccountName',
    ]);
    expect(at(accessCrd, 'spec.identity').required).toEqual(['resourceId']);
  });

  it('has the privilege enum of types.ts, and CEL rules with the per-target lists of types.ts', () => {
    expect(at(accessCrd, 'spec.grants[].privileges[]').enum).toEqual([...PRIVILEGES]);
    expect(at(accessCrd, 'spec.grants[].target').enum).toEqual([...GRANT_TARGETS]);
    const grantRules = rules(at(accessCrd, 'spec.grants[]'));
    for (const target of GRANT_TARGETS) {
      const list = PRIVILEGES_BY_TARGET[target];
      const rule = grantRules.find((r) => r.rule.includes(`self.target != '${target}' ||`));
      expect(rule?.rule, target).toContain(`self.privileges.all(p, p in ${ceLiteral(list)})`);
      expect(rule?.messageExpression, target).toContain(`!(p in ${ceLiteral(list)})`);
      expect(rule?.messageExpression, target).toContain(`valid on ${target}: ${list.join(', ')}'`);
    }
    // `target`, not `on`, which YAML 1.1 (kubectl, Helm) reads as the boolean key true: a plain
    // required field, and neither `on` nor `true` is in the schema any more.
    expect(at(accessCrd, 'spec.grants[]').required).toEqual(['target', 'privileges']);
    expect(Object.keys(at(accessCrd, 'spec.grants[]').properties ?? {}).sort()).toEqual([
      'privileges',
      'schema',
      'tables',
      'target',
    ]);
    for (const rule of grantRules)
      expect(`${rule.rule} ${rule.messageExpression ?? ''}`).not.toMatch(/self\.on\b/);
    // The enum is exactly the union of the per-target lists.
    expect(new Set(Object.values(PRIVILEGES_BY_TARGET).flat())).toEqual(new Set(PRIVILEGES));
  });

  it('defaults deletionPolicy to the value in types.ts, and leaves roleName to the controller', () => {
    expect(at(accessCrd, 'spec.deletionPolicy').enum).toEqual([...DELETION_POLICIES]);
    expect(at(accessCrd, 'spec.deletionPolicy').default).toBe(DEFAULT_DELETION_POLICY);
    expect(at(accessCrd, 'spec.roleName').default).toBeUndefined();
    expect(at(accessCrd, 'status.connection.sslMode').enum).toEqual([...SSL_MODES]);
  });

  it('defaults ownedObjects.policy to the value in types.ts, and reassignTo to nothing', () => {
    expect(at(accessCrd, 'spec.ownedObjects.policy').enum).toEqual([...OWNED_OBJECTS_POLICIES]);
    expect(at(accessCrd, 'spec.ownedObjects.policy').default).toBe(DEFAULT_OWNED_OBJECTS_POLICY);
    expect(at(accessCrd, 'spec.ownedObjects').default).toBeUndefined();
    expect(at(accessCrd, 'spec.ownedObjects.reassignTo').default).toBeUndefined();
  });

  it.each([
    'spec.database',
    'spec.roleName',
    'spec.memberOf[]',
    'spec.grants[].schema',
    'spec.grants[].tables[]',
    'spec.ownedObjects.reassignTo',
  ])('checks %s with the PostgreSQL identifier pattern of types.ts', (path) => {
    expect(rules(at(accessCrd, path))[0]?.rule).toBe(`self.matches('${POSTGRES_IDENTIFIER_PATTERN}')`);
  });

  it('refuses the reserved role names of types.ts, for roleName, ownedObjects.reassignTo and metadata.name standing in', () => {
    const [, reserved] = rules(at(accessCrd, 'spec.roleName'));
    expect(reserved?.rule).toContain(`self.lowerAscii() in ${ceLiteral(RESERVED_ROLE_NAMES)}`);
    const [, reassignReserved] = rules(at(accessCrd, 'spec.ownedObjects.reassignTo'));
    expect(reassignReserved?.rule).toBe(reserved?.rule);
    const [, rootReserved] = rules(rootSchema(accessCrd));
    expect(rootReserved?.rule).toContain(`self.metadata.name in ${ceLiteral(RESERVED_ROLE_NAMES)}`);
    for (const prefix of RESERVED_ROLE_PREFIXES) {
      expect(reserved?.rule).toContain(`self.lowerAscii().startsWith('${prefix}')`);
      expect(rootReserved?.rule).toContain(`self.metadata.name.startsWith('${prefix}')`);
    }
  });

  it('checks metadata.name with the same pattern when it stands in for roleName', () => {
    expect(rules(rootSchema(accessCrd))[0]?.rule).toBe(
      `has(self.spec.roleName) || self.metadata.name.matches('${POSTGRES_IDENTIFIER_PATTERN}')`,
    );
  });

  it('checks the identity resource ID with the pattern of types.ts', () => {
    expect(rules(at(accessCrd, 'spec.identity.resourceId'))[0]?.rule).toBe(
      `self.matches(r'${USER_ASSIGNED_IDENTITY_ID_PATTERN}')`,
    );
  });

  it('shows Role as the role actually used, and Server', () => {
    const columns = accessCrd.spec.versions[0]?.additionalPrinterColumns ?? [];
    expect(columns.map((c) => c.name)).toEqual(['Ready', 'Role', 'Server', 'Age', 'Message']);
    expect(columns.find((c) => c.name === 'Role')?.jsonPath).toBe('.status.connection.user');
    expect(columns.find((c) => c.name === 'Server')?.jsonPath).toBe('.spec.serverRef');
  });

  it('describes the conditions the controller sets', () => {
    const description = at(accessCrd, 'status.conditions').description ?? '';
    for (const type of Object.values(ConditionType)) expect(description).toContain(type);
  });
});

describe('examples', () => {
  const server = k8s.loadAllYaml(repoFile('examples/entradatabaseserver.yaml'))[0] as EntraDatabaseServer;
  const access = k8s.loadAllYaml(repoFile('examples/entradatabaseaccess.yaml'))[0] as EntraDatabaseAccess;

  it('are of the kinds of this API, and the access refers to the server', () => {
    expect([server.apiVersion, server.kind]).toEqual([API_VERSION, SERVER_KIND]);
    expect([access.apiVersion, access.kind]).toEqual([API_VERSION, ACCESS_KIND]);
    expect(access.spec.serverRef).toBe(server.metadata.name);
    expect(server.spec.allowedDatabases).toContain(access.spec.database);
    for (const role of access.spec.memberOf ?? []) expect(server.spec.allowedMemberOf).toContain(role);
    expect(server.spec.allowedNamespaces?.names).toContain(access.metadata.namespace);
  });

  it('say target, with no quotes: the key YAML 1.1 (kubectl, Helm) reads as true, on, is gone', () => {
    const text = repoFile('examples/entradatabaseaccess.yaml')
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('#'))
      .join('\n');
    expect(text).toMatch(/[\s{,]target: database\b/);
    expect(text).not.toMatch(/(^|[\s{,])"?on"?\s*:/);
  });

  it('pass the checks types.ts can make', () => {
    expect(access.spec.identity.resourceId).toMatch(USER_ASSIGNED_IDENTITY_ID_REGEXP);
    expect(isPostgresIdentifier(access.spec.roleName ?? '')).toBe(true);
    expect(isReservedRoleName(access.spec.roleName ?? '')).toBe(false);
    const grants = access.spec.grants ?? [];
    expect(new Set(grants.map((g) => g.target))).toEqual(new Set(GRANT_TARGETS));
    for (const grant of grants)
      for (const privilege of grant.privileges) expect(isPrivilegeFor(grant.target, privilege)).toBe(true);
  });
});

describe('name rules in types.ts', () => {
  it.each([
    ['orders_api', true],
    ['orders-api', true],
    ['_x$1', true],
    ['a'.repeat(63), true],
    ['a'.repeat(64), false],
    ['1orders', false],
    ['orders.api', false],
    ['orders api', false],
    ['orders";DROP ROLE x;--', false],
    ["o'brien", false],
    ['', false],
  ])('isPostgresIdentifier(%j) is %s', (name, expected) => {
    expect(isPostgresIdentifier(name)).toBe(expected);
  });

  it.each([
    ['postgres', true],
    ['PUBLIC', true],
    ['pg_monitor', true],
    ['azure_pg_admin', true],
    ['Azure_SuperUser', true],
    ['azuresu', true],
    ['orders_api', false],
    ['azurefunctions', false],
  ])('isReservedRoleName(%j) is %s', (name, expected) => {
    expect(isReservedRoleName(name)).toBe(expected);
  });

  it.each([
    [
      '/subscriptions/3f2504e0-4f89-41d3-9a0c-0305e82c3301/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app',
      true,
    ],
    [
      '/subscriptions/3F2504E0-4F89-41D3-9A0C-0305E82C3301/resourcegroups/Rg.(x)_ü/providers/microsoft.managedidentity/userassignedidentities/app-1_x',
      true,
    ],
    [
      '/subscriptions/3f2504e0-4f89-41d3-9a0c-0305e82c3301/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm',
      false,
    ],
    [
      '/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app',
      false,
    ],
    [
      '/subscriptions/3f2504e0-4f89-41d3-9a0c-0305e82c3301/resourceGroups/rg./providers/Microsoft.ManagedIdentity/userAssignedIdentities/app',
      false,
    ],
    [
      '/subscriptions/3f2504e0-4f89-41d3-9a0c-0305e82c3301/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app/federatedIdentityCredentials/x',
      false,
    ],
  ])('USER_ASSIGNED_IDENTITY_ID_REGEXP on %s is %s', (id, expected) => {
    expect(USER_ASSIGNED_IDENTITY_ID_REGEXP.test(id)).toBe(expected);
  });

  it('isPrivilegeFor follows the per-target lists', () => {
    expect(isPrivilegeFor('database', 'CONNECT')).toBe(true);
    expect(isPrivilegeFor('database', 'SELECT')).toBe(false);
    expect(isPrivilegeFor('tables', 'MAINTAIN')).toBe(true);
    expect(isPrivilegeFor('sequences', 'INSERT')).toBe(false);
    expect(isPrivilegeFor('schema', 'DROP')).toBe(false);
  });
});
