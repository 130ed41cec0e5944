// User-assigned managed identity resource IDs, and the namespace allow-list of them
// (annotation `entra-access.io/allowed-identities`). Pure.
//
// ARM treats the segment names ("resourceGroups", "providers", ...) and the resource names as
// case-insensitive, and returns IDs in its own casing (e.g. `resourcegroups`), so every comparison
// here is on lower-cased segments. The allow-list is a tenant-isolation boundary: a `/*` prefix
// matches whole segments only, so `.../resourceGroups/rg/*` never lets `rg2` through.

export interface IdentityRef {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
}

export class InvalidIdentityId extends Error {
  override name = 'InvalidIdentityId';
  readonly resourceId: string;

  constructor(resourceId: string, why: string) {
    super(`"${resourceId}" is not a user-assigned managed identity resource ID: ${why}`);
    this.resourceId = resourceId;
  }
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Azure's rules: resource group 1–90 of letters, digits, `_ . ( ) -`, not ending in a period;
// identity 3–128 of letters, digits, `-` and `_`, starting with a letter or digit.
const RESOURCE_GROUP = /^[\p{L}\p{N}_.()-]{1,90}$/u;
const IDENTITY_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/;

const PROVIDER = 'microsoft.managedidentity';
const TYPE = 'userassignedidentities';
const ID_FORMAT =
  '/subscriptions/<subscription GUID>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>';

function segments(path: string): string[] | undefined {
  if (!path.startsWith('/')) return undefined;
  const parts = path.slice(1).split('/');
  return parts.some((p) => p === '') ? undefined : parts;
}

function checkSubscription(id: string, subscriptionId: string): void {
  if (!GUID.test(subscriptionId))
    throw new InvalidIdentityId(id, `subscription "${subscriptionId}" is not a GUID`);
}

function checkResourceGroup(id: string, resourceGroup: string): void {
  if (!RESOURCE_GROUP.test(resourceGroup) || resourceGroup.endsWith('.')) {
    throw new InvalidIdentityId(id, `"${resourceGroup}" is not a valid resource group name`);
  }
}

/** Parses an identity's resource ID; throws InvalidIdentityId saying what is wrong. */
export function parseIdentityId(resourceId: string): IdentityRef {
  const parts = segments(resourceId.trim());
  if (parts?.length !== 8) throw new InvalidIdentityId(resourceId, `expected ${ID_FORMAT}`);
  const [subs, subscriptionId, groups, resourceGroup, providers, provider, type, name] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (
    subs.toLowerCase() !== 'subscriptions' ||
    groups.toLowerCase() !== 'resourcegroups' ||
    providers.toLowerCase() !== 'providers' ||
    provider.toLowerCase() !== PROVIDER ||
    type.toLowerCase() !== TYPE
  ) {
    throw new InvalidIdentityId(resourceId, `expected ${ID_FORMAT}`);
  }
  checkSubscription(resourceId, subscriptionId);
  checkResourceGroup(resourceId, resourceGroup);
  if (!IDENTITY_NAME.test(name))
    throw new InvalidIdentityId(resourceId, `"${name}" is not a valid identity name`);
  return { subscriptionId, resourceGroup, name };
}

export function tryParseIdentityId(resourceId: string): IdentityRef | undefined {
  try {
    return parseIdentityId(resourceId);
  } catch {
    return undefined;
  }
}

/** The resource ID in ARM's documented casing. */
export function formatIdentityId(ref: IdentityRef): string {
  return (
    `/subscriptions/${ref.subscriptionId}/resourceGroups/${ref.resourceGroup}` +
    `/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${ref.name}`
  );
}

/** One key per identity however its ID is cased: for maps, locks and rate limits. */
export function identityKey(ref: IdentityRef): string {
  return formatIdentityId(ref).toLowerCase();
}

/** One entry of the allow-list: an exact identity, or a subscription / resource-group prefix. */
export type AllowEntry = { kind: 'identity'; key: string } | { kind: 'prefix'; segments: string[] };

export interface AllowList {
  entries: AllowEntry[];
  /** Entries that are neither an identity ID nor a supported prefix, as written (for messages). */
  invalid: string[];
}

/**
 * Only prefixes that name a subscription or a resource group (optionally down to the identity
 * type) are accepted: a bare `/*` or `/subscriptions/*` would silently allow every identity the
 * operator can write, which is never what a tenant boundary means.
 */
function parsePrefix(entry: string): string[] | undefined {
  const parts = segments(entry.slice(0, -2));
  if (!parts) return undefined;
  const lower = parts.map((p) => p.toLowerCase());
  if (lower[0] !== 'subscriptions' || lower.length < 2) return undefined;
  try {
    checkSubscription(entry, parts[1]!);
    if (lower.length === 2) return lower;
    if (lower[2] !== 'resourcegroups' || lower.length < 4) return undefined;
    checkResourceGroup(entry, parts[3]!);
  } catch {
    return undefined;
  }
  if (lower.length === 4) return lower;
  if (lower.length === 7 && lower[4] === 'providers' && lower[5] === PROVIDER && lower[6] === TYPE)
    return lower;
  return undefined;
}

/** Parses the comma-separated annotation value; blanks are ignored, bad entries reported. */
export function parseAllowList(annotation: string): AllowList {
  const list: AllowList = { entries: [], invalid: [] };
  for (const raw of annotation.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    if (entry.endsWith('/*')) {
      const prefix = parsePrefix(entry);
      if (prefix) list.entries.push({ kind: 'prefix', segments: prefix });
      else list.invalid.push(entry);
      continue;
    }
    const ref = tryParseIdentityId(entry);
    if (ref) list.entries.push({ kind: 'identity', key: identityKey(ref) });
    else list.invalid.push(entry);
  }
  return list;
}

/**
 * Whether the namespace's allow-list covers the identity. A missing or empty annotation allows
 * nothing, and an ID that does not parse is never allowed.
 */
export function identityAllowed(resourceId: string, allowList: string | AllowList | undefined): boolean {
  const ref = tryParseIdentityId(resourceId);
  if (!ref || allowList === undefined) return false;
  const list = typeof allowList === 'string' ? parseAllowList(allowList) : allowList;
  const key = identityKey(ref);
  const idSegments = key.slice(1).split('/');
  return list.entries.some((entry) =>
    entry.kind === 'identity'
      ? entry.key === key
      : entry.segments.length < idSegments.length && entry.segments.every((s, i) => s === idSegments[i]),
  );
}

/**
 * The key of an identity's resource ID as written in a spec or a status: identityKey() when it
 * parses, else the lower-cased text (a malformed ID still equals only itself).
 */
export function identityIdKey(resourceId: string): string {
  const ref = tryParseIdentityId(resourceId);
  return ref ? identityKey(ref) : resourceId.trim().toLowerCase();
}

/** Whether two resource IDs name the same identity (ARM IDs are case-insensitive). */
export function sameIdentityId(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  return identityIdKey(a) === identityIdKey(b);
}
