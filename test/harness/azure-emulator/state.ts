// In-memory model of user-assigned managed identities and their federated identity credentials,
// plus the PUT rules Azure enforces on FICs as pure functions (no I/O, no clock of their own).
import { randomUUID } from 'node:crypto';

export interface Fic {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
  /** Last create or update (ms since epoch); the FIC propagation delay counts from here. */
  changedAt: number;
  /** Seeded through the control API: known to the token exchange at once, whatever the delay. */
  seeded: boolean;
}

export interface Identity {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  clientId: string;
  principalId: string;
  tenantId: string;
  /** Keyed by lower-cased name: ARM resource names are case-insensitive. */
  fics: Map<string, Fic>;
  /** True while a FIC write on this identity is in progress (Azure answers a second one 409). */
  writeInFlight: boolean;
  /**
   * When the identity was made (ms since epoch): its service principal's replication delay, which
   * role assignments see as PrincipalNotFound, counts from here.
   */
  createdAt: number;
}

export interface FicProperties {
  issuer: string;
  subject: string;
  audiences: string[];
}

export const MAX_FICS_PER_IDENTITY = 20;
export const FIC_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$/;
export const DUPLICATE_ISSUER_SUBJECT_MESSAGE =
  'Issuer and subject combination already exists for this Managed Identity.';

export const IDENTITY_TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities';
export const FIC_TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials';

function identityKey(subscriptionId: string, resourceGroup: string, name: string): string {
  return [subscriptionId, resourceGroup, name].map((s) => s.toLowerCase()).join('/');
}

/** ARM id as Azure returns it for user-assigned identities (note the lower-case `resourcegroups`). */
export function identityArmId(identity: Identity): string {
  return (
    `/subscriptions/${identity.subscriptionId}/resourcegroups/${identity.resourceGroup}` +
    `/providers/${IDENTITY_TYPE}/${identity.name}`
  );
}

export function identityResource(identity: Identity) {
  return {
    id: identityArmId(identity),
    name: identity.name,
    type: IDENTITY_TYPE,
    location: identity.location,
    tags: {},
    properties: {
      tenantId: identity.tenantId,
      principalId: identity.principalId,
      clientId: identity.clientId,
    },
  };
}

export function ficResource(identity: Identity, fic: Fic) {
  return {
    id: `${identityArmId(identity)}/federatedIdentityCredentials/${fic.name}`,
    name: fic.name,
    type: FIC_TYPE,
    properties: { issuer: fic.issuer, subject: fic.subject, audiences: [...fic.audiences] },
  };
}

export interface NewIdentity {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location?: string;
  clientId?: string;
  principalId?: string;
}

export class IdentityStore {
  readonly #byKey = new Map<string, Identity>();
  readonly #tenantId: string;

  constructor(tenantId: string) {
    this.#tenantId = tenantId;
  }

  create(spec: NewIdentity): Identity {
    const key = identityKey(spec.subscriptionId, spec.resourceGroup, spec.name);
    if (this.#byKey.has(key))
      throw new Error(`identity ${spec.name} already exists in ${spec.resourceGroup}`);
    const clientId = spec.clientId ?? randomUUID();
    const principalId = spec.principalId ?? randomUUID();
    for (const other of this.#byKey.values()) {
      if (other.clientId.toLowerCase() === clientId.toLowerCase())
        throw new Error(`clientId ${clientId} is taken`);
      if (other.principalId.toLowerCase() === principalId.toLowerCase()) {
        throw new Error(`principalId ${principalId} is taken`);
      }
    }
    const identity: Identity = {
      subscriptionId: spec.subscriptionId,
      resourceGroup: spec.resourceGroup,
      name: spec.name,
      location: spec.location ?? 'westeurope',
      clientId,
      principalId,
      tenantId: this.#tenantId,
      fics: new Map(),
      writeInFlight: false,
      createdAt: Date.now(),
    };
    this.#byKey.set(key, identity);
    return identity;
  }

  get(subscriptionId: string, resourceGroup: string, name: string): Identity | undefined {
    return this.#byKey.get(identityKey(subscriptionId, resourceGroup, name));
  }

  delete(subscriptionId: string, resourceGroup: string, name: string): boolean {
    return this.#byKey.delete(identityKey(subscriptionId, resourceGroup, name));
  }

  byClientId(clientId: string): Identity | undefined {
    const wanted = clientId.toLowerCase();
    for (const identity of this.#byKey.values())
      if (identity.clientId.toLowerCase() === wanted) return identity;
    return undefined;
  }

  byPrincipalId(principalId: string): Identity | undefined {
    const wanted = principalId.toLowerCase();
    for (const identity of this.#byKey.values()) {
      if (identity.principalId.toLowerCase() === wanted) return identity;
    }
    return undefined;
  }

  all(): Identity[] {
    return [...this.#byKey.values()];
  }

  clear(): void {
    this.#byKey.clear();
  }
}

/**
 * Checks the shape of a PUT body and returns its properties, or an error message in Azure's words
 * where we know them.
 */
export function parseFicBody(body: unknown): FicProperties | string {
  if (typeof body !== 'object' || body === null) return 'The request body must be a JSON object.';
  const properties = (body as Record<string, unknown>).properties;
  if (typeof properties !== 'object' || properties === null) return 'The properties field is required.';
  const { issuer, subject, audiences } = properties as Record<string, unknown>;
  if (typeof issuer !== 'string' || issuer === '') return 'The issuer field is required.';
  if (typeof subject !== 'string' || subject === '')
    return 'The subject field is required and cannot be empty.';
  if (!Array.isArray(audiences) || audiences.some((a) => typeof a !== 'string')) {
    return 'The audiences field is required and must be an array of strings.';
  }
  return { issuer, subject, audiences: audiences as string[] };
}

/**
 * Azure's rules for creating or updating FIC `name` on `identity`. Returns an error message for a
 * 400 BadRequest, or undefined when the write is allowed.
 */
export function checkFicPut(identity: Identity, name: string, props: FicProperties): string | undefined {
  if (!FIC_NAME_PATTERN.test(name)) {
    return (
      `Federated identity credential name '${name}' is invalid. It must be 3 to 120 characters long, ` +
      'start with a letter or number, and contain only letters, numbers, hyphens and underscores.'
    );
  }
  if (props.audiences.length !== 1) {
    return `Exactly one audience must be specified, but ${props.audiences.length} were given.`;
  }
  if (props.audiences[0] === '' || (props.audiences[0]?.length ?? 0) > 600) {
    return 'The audience must be between 1 and 600 characters long.';
  }
  if (props.issuer.length > 600) return 'The issuer must be at most 600 characters long.';
  let issuerUrl: URL | undefined;
  try {
    issuerUrl = new URL(props.issuer);
  } catch {
    issuerUrl = undefined;
  }
  if (issuerUrl?.protocol !== 'https:') return `The issuer '${props.issuer}' must be a valid https URL.`;
  if (props.subject.length > 600) return 'The subject must be at most 600 characters long.';
  const key = name.toLowerCase();
  for (const [otherKey, other] of identity.fics) {
    if (otherKey !== key && other.issuer === props.issuer && other.subject === props.subject) {
      return DUPLICATE_ISSUER_SUBJECT_MESSAGE;
    }
  }
  if (!identity.fics.has(key) && identity.fics.size >= MAX_FICS_PER_IDENTITY) {
    return (
      `The managed identity already has the maximum of ${MAX_FICS_PER_IDENTITY} federated identity ` +
      'credentials. Delete one before adding another.'
    );
  }
  return undefined;
}

/** Creates or updates; returns true when the FIC was created. Keeps the stored name's casing. */
export function putFic(
  identity: Identity,
  name: string,
  props: FicProperties,
  now: number,
  seeded = false,
): { created: boolean; fic: Fic } {
  const key = name.toLowerCase();
  const existing = identity.fics.get(key);
  const fic: Fic = {
    name: existing?.name ?? name,
    issuer: props.issuer,
    subject: props.subject,
    audiences: [...props.audiences],
    changedAt: now,
    seeded,
  };
  identity.fics.set(key, fic);
  return { created: existing === undefined, fic };
}

/**
 * FICs visible to the token exchange: real Entra takes minutes to learn of a new or changed FIC,
 * and tests model that with `propagationSeconds`.
 */
export function propagatedFics(identity: Identity, now: number, propagationSeconds: number): Fic[] {
  return [...identity.fics.values()].filter(
    (fic) => fic.seeded || now - fic.changedAt >= propagationSeconds * 1000,
  );
}
