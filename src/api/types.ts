// TypeScript shapes of the custom resources, matching crds/*.yaml field for field, plus the closed
// lists and defaults the schema enforces, so code can check and apply them without the YAML.
// test/unit/api/crd-schema.test.ts keeps the lists here and the enums in the CRDs equal.

import type { V1ListMeta, V1ObjectMeta } from '@kubernetes/client-node';
import type { ACCESS_KIND, API_VERSION, ConditionType, SERVER_KIND } from './constants.ts';

// --- Closed lists ---

/**
 * TLS modes, as in libpq: verify-full checks the chain and the host name, verify-ca the chain only
 * (for a host name the certificate does not list), require neither.
 */
export const SSL_MODES = ['verify-full', 'verify-ca', 'require'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export const DELETION_POLICIES = ['Delete', 'Orphan'] as const;
export type DeletionPolicy = (typeof DELETION_POLICIES)[number];

/**
 * What a deletion with `Delete` does with the objects the role owns (spec.ownedObjects.policy):
 * Keep the role without login, or Reassign them to `reassignTo` and drop the role.
 */
export const OWNED_OBJECTS_POLICIES = ['Keep', 'Reassign'] as const;
export type OwnedObjectsPolicy = (typeof OWNED_OBJECTS_POLICIES)[number];

/** What a grant applies to: `spec.database` itself, or a schema, or its tables or sequences. */
export const GRANT_TARGETS = ['database', 'schema', 'tables', 'sequences'] as const;
export type GrantTarget = (typeof GRANT_TARGETS)[number];

export const DATABASE_PRIVILEGES = ['CONNECT', 'CREATE', 'TEMPORARY', 'ALL'] as const;
export const SCHEMA_PRIVILEGES = ['USAGE', 'CREATE', 'ALL'] as const;
export const TABLE_PRIVILEGES = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'TRUNCATE',
  'REFERENCES',
  'TRIGGER',
  'MAINTAIN',
  'ALL',
] as const;
export const SEQUENCE_PRIVILEGES = ['USAGE', 'SELECT', 'UPDATE', 'ALL'] as const;

export type DatabasePrivilege = (typeof DATABASE_PRIVILEGES)[number];
export type SchemaPrivilege = (typeof SCHEMA_PRIVILEGES)[number];
export type TablePrivilege = (typeof TABLE_PRIVILEGES)[number];
export type SequencePrivilege = (typeof SEQUENCE_PRIVILEGES)[number];

/** The privileges valid for each grant target (the CRD's CEL rules hold the same lists). */
export const PRIVILEGES_BY_TARGET = {
  database: DATABASE_PRIVILEGES,
  schema: SCHEMA_PRIVILEGES,
  tables: TABLE_PRIVILEGES,
  sequences: SEQUENCE_PRIVILEGES,
} as const satisfies Record<GrantTarget, readonly string[]>;

/** Every privilege the schema's enum admits, in the CRD's order. */
export const PRIVILEGES = [
  'CONNECT',
  'CREATE',
  'TEMPORARY',
  'USAGE',
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'TRUNCATE',
  'REFERENCES',
  'TRIGGER',
  'MAINTAIN',
  'ALL',
] as const;
export type Privilege = (typeof PRIVILEGES)[number];

/** True when `privilege` may be granted on `target`: a closed-list check for untyped input. */
export function isPrivilegeFor(target: GrantTarget, privilege: string): boolean {
  return (PRIVILEGES_BY_TARGET[target] as readonly string[]).includes(privilege);
}

// --- Defaults (applied by the apiserver from the schema, except where noted) ---

export const DEFAULT_PORT = 5432;
export const DEFAULT_SSL_MODE: SslMode = 'verify-full';
export const DEFAULT_SSL_ROOT_CERT_KEY = 'ca.crt';
export const DEFAULT_DELETION_POLICY: DeletionPolicy = 'Delete';
export const DEFAULT_OWNED_OBJECTS_POLICY: OwnedObjectsPolicy = 'Keep';

// --- Name rules the schema enforces (the CRD's CEL rules use the same expressions) ---

/**
 * A PostgreSQL role, database, schema, table or group role name: 1-63 ASCII characters, no
 * quotes, semicolons, spaces or dots. Conservative on purpose; identifiers are still always quoted.
 * The schema also checks `metadata.name` against it when it stands in for an omitted `roleName`.
 */
export const POSTGRES_IDENTIFIER_PATTERN = '^[A-Za-z_][A-Za-z0-9_$-]{0,62}$';
/** `spec.adminRole` may also start with a digit: it is a managed identity's name. */
export const ADMIN_ROLE_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}$';
/** Role names PostgreSQL or Azure reserve (compared case-insensitively), besides the prefixes. */
export const RESERVED_ROLE_NAMES = [
  'postgres',
  'public',
  'none',
  'current_user',
  'session_user',
  'current_role',
  'azuresu',
] as const;
export const RESERVED_ROLE_PREFIXES = ['pg_', 'azure_'] as const;
/** A user-assigned managed identity's ARM resource ID, in the RE2 syntax of the CRD's CEL rule. */
export const USER_ASSIGNED_IDENTITY_ID_PATTERN =
  '(?i)^/subscriptions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/resourceGroups/[-\\pL\\pN._()]{0,89}[-\\pL\\pN_()]/providers/Microsoft[.]ManagedIdentity/userAssignedIdentities/[A-Za-z0-9][-A-Za-z0-9_]{2,127}$';
/** The same rule as a JavaScript RegExp, derived from the RE2 form. */
export const USER_ASSIGNED_IDENTITY_ID_REGEXP = new RegExp(
  USER_ASSIGNED_IDENTITY_ID_PATTERN.replace('(?i)', '')
    .replaceAll('\\pL', '\\p{L}')
    .replaceAll('\\pN', '\\p{N}'),
  'iu',
);

const POSTGRES_IDENTIFIER_REGEXP = new RegExp(POSTGRES_IDENTIFIER_PATTERN);

export function isPostgresIdentifier(name: string): boolean {
  return POSTGRES_IDENTIFIER_REGEXP.test(name);
}

export function isReservedRoleName(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    (RESERVED_ROLE_NAMES as readonly string[]).includes(lower) ||
    RESERVED_ROLE_PREFIXES.some((prefix) => lower.startsWith(prefix))
  );
}

// --- Shared shapes ---

/** metav1.Condition as it travels in JSON (times are RFC 3339 strings). */
export interface Condition {
  /** CamelCase; one of ConditionType for this project's own conditions. */
  type: ConditionType | string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  /** CamelCase, matching ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$. */
  reason: string;
  message: string;
}

export type LabelSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: LabelSelectorOperator;
  /** Non-empty for In and NotIn; empty or absent for Exists and DoesNotExist. */
  values?: string[];
}

/** metav1.LabelSelector. An empty selector ({}) matches everything; an absent one nothing. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

// --- EntraDatabaseServer (cluster-scoped) ---

export interface SecretKeyReference {
  name: string;
  namespace: string;
  /** Defaults to DEFAULT_SSL_ROOT_CERT_KEY. */
  key?: string;
}

export interface AllowedNamespaces {
  names?: string[];
  selector?: LabelSelector;
}

export interface EntraDatabaseServerSpec {
  host: string;
  /** Defaults to DEFAULT_PORT. */
  port?: number;
  /** Defaults to DEFAULT_SSL_MODE. */
  sslMode?: SslMode;
  sslRootCertSecretRef?: SecretKeyReference;
  /** The PostgreSQL role of the operator's own Entra admin identity. */
  adminRole: string;
  /** Defaulted by the operator from its Azure cloud when absent (not by the schema). */
  tokenScope?: string;
  /** Omitted or empty: no namespace may use the server. */
  allowedNamespaces?: AllowedNamespaces;
  /** Database names, or exactly ['*'] for all. Omitted or empty: none. */
  allowedDatabases?: string[];
  /** Group roles access resources may join. Omitted or empty: none. */
  allowedMemberOf?: string[];
}

export interface EntraDatabaseServerStatus {
  observedGeneration?: number;
  serverVersion?: string;
  conditions?: Condition[];
}

export interface EntraDatabaseServer {
  apiVersion: typeof API_VERSION;
  kind: typeof SERVER_KIND;
  metadata: V1ObjectMeta;
  spec: EntraDatabaseServerSpec;
  status?: EntraDatabaseServerStatus;
}

export interface EntraDatabaseServerList {
  apiVersion: typeof API_VERSION;
  kind: `${typeof SERVER_KIND}List`;
  metadata: V1ListMeta;
  items: EntraDatabaseServer[];
}

// --- EntraDatabaseAccess (namespaced) ---

export interface DatabaseGrant {
  target: 'database';
  privileges: DatabasePrivilege[];
}

export interface SchemaGrant {
  target: 'schema';
  schema: string;
  privileges: SchemaPrivilege[];
}

export interface TablesGrant {
  target: 'tables';
  schema: string;
  /** Omitted: every table in the schema. Never empty. */
  tables?: string[];
  privileges: TablePrivilege[];
}

export interface SequencesGrant {
  target: 'sequences';
  schema: string;
  privileges: SequencePrivilege[];
}

/**
 * One grant; `target` discriminates, as the schema's CEL rules do. (Not `on`: YAML 1.1 parsers,
 * which kubectl and Helm use, read a bare `on:` key as the boolean true.)
 */
export type Grant = DatabaseGrant | SchemaGrant | TablesGrant | SequencesGrant;

/**
 * spec.ownedObjects: what deleting the resource (deletionPolicy Delete) does when its role owns
 * objects, e.g. the tables of an app that runs its own migrations. Data is never dropped.
 */
export interface OwnedObjects {
  /** Defaults to DEFAULT_OWNED_OBJECTS_POLICY (Keep: the role is kept without login). */
  policy?: OwnedObjectsPolicy;
  /**
   * With Reassign (and only then): the existing role that becomes the owner of everything the
   * role owns, in every database; the server's allowedMemberOf must list it.
   */
  reassignTo?: string;
}

/** The role that receives the objects on deletion, or undefined when they are kept (Keep). */
export function reassignTargetOf(spec: Pick<EntraDatabaseAccessSpec, 'ownedObjects'>): string | undefined {
  const owned = spec.ownedObjects;
  if ((owned?.policy ?? DEFAULT_OWNED_OBJECTS_POLICY) !== 'Reassign') return undefined;
  return owned?.reassignTo || undefined;
}

export interface IdentityReference {
  /** /subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name> */
  resourceId: string;
}

export interface EntraDatabaseAccessSpec extends BindingSpec {
  serviceAccountName: string;
  identity: IdentityReference;
  /** Name of an EntraDatabaseServer. */
  serverRef: string;
  database: string;
  /** Defaults to metadata.name, applied by the controller (not by the schema). */
  roleName?: string;
  memberOf?: string[];
  grants?: Grant[];
  /** Defaults to DEFAULT_DELETION_POLICY. */
  deletionPolicy?: DeletionPolicy;
  /** Omitted: Keep. */
  ownedObjects?: OwnedObjects;
}

export interface IdentityStatus {
  /** The identity the federated credential and role were made for (to clean up after a change). */
  resourceId?: string;
  clientId?: string;
  principalId?: string;
  tenantId?: string;
}

export interface FederatedCredentialStatus {
  name?: string;
  issuer?: string;
  subject?: string;
  /** The identity it is on (the spec's may have moved on since). */
  identityResourceId?: string;
}

/**
 * A federated credential this resource made for an earlier identity or ServiceAccount, on record
 * until it is deleted: a change or a deletion arriving meanwhile still finds it.
 */
export interface StaleFederatedCredential {
  identityResourceId: string;
  name: string;
  subject?: string;
}

/** What the application needs to connect; no secret. */
export interface ConnectionStatus {
  host?: string;
  port?: number;
  database?: string;
  /** The role actually used, which may differ from roleName when the identity already had one. */
  user?: string;
  sslMode?: SslMode;
  tokenScope?: string;
}

/** What the operator last granted, so removed grants are revoked exactly. */
export interface AppliedStatus {
  server?: string;
  /** The Entra principal (object ID) the role was made for. */
  principalId?: string;
  database?: string;
  role?: string;
  memberOf?: string[];
  grants?: Grant[];
}

/** The status fields of every kind that binds a ServiceAccount to a managed identity. */
export interface BindingStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  identity?: IdentityStatus;
  federatedCredential?: FederatedCredentialStatus;
  staleFederatedCredentials?: StaleFederatedCredential[];
}

/** The spec fields of every kind that binds a ServiceAccount to a managed identity. */
export interface BindingSpec {
  serviceAccountName: string;
  identity: IdentityReference;
  deletionPolicy?: DeletionPolicy;
}

export interface EntraDatabaseAccessStatus extends BindingStatus {
  applied?: AppliedStatus;
  connection?: ConnectionStatus;
}

export interface EntraDatabaseAccess {
  apiVersion: typeof API_VERSION;
  kind: typeof ACCESS_KIND;
  metadata: V1ObjectMeta;
  spec: EntraDatabaseAccessSpec;
  status?: EntraDatabaseAccessStatus;
}

export interface EntraDatabaseAccessList {
  apiVersion: typeof API_VERSION;
  kind: `${typeof ACCESS_KIND}List`;
  metadata: V1ListMeta;
  items: EntraDatabaseAccess[];
}
