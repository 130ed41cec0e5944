// ARM scopes (resource IDs a role assignment applies to) and the Microsoft.Authorization paths
// under them. Pure functions.
//
// A scope is a resource ID: `/subscriptions/{s}`, `…/resourceGroups/{rg}`,
// `…/providers/{namespace}/{type}/{name}[/{type}/{name}…]`. An assignment at a scope applies to it
// and to everything below it, segment by segment (learn.microsoft.com/azure/role-based-access-control/scope-overview).
// ARM compares resource IDs case-insensitively. @azure/arm-authorization puts the scope into
// `/{scope}/providers/…` without encoding it, so a scope given with its leading slash arrives as
// `//subscriptions/…`: repeated slashes are collapsed here.

export type AuthorizationPath =
  | { kind: 'roleAssignments'; scope: string }
  | { kind: 'roleAssignment'; scope: string; name: string }
  | { kind: 'roleDefinitions'; scope: string }
  | { kind: 'roleDefinition'; scope: string; name: string };

const PROVIDER = '/providers/microsoft.authorization/';

/** `//subscriptions/x//resourceGroups/y/` → `/subscriptions/x/resourceGroups/y`; `` → `/`. */
export function normalizeScope(scope: string): string {
  const collapsed = `/${scope}`.replace(/\/{2,}/g, '/').replace(/\/+$/, '');
  return collapsed === '' ? '/' : collapsed;
}

function segments(scope: string): string[] {
  return normalizeScope(scope)
    .split('/')
    .filter((s) => s !== '')
    .map((s) => s.toLowerCase());
}

/** Whether `ancestor` is `scope` or contains it, by whole segments, case-insensitively. */
export function isAtOrAbove(ancestor: string, scope: string): boolean {
  const a = segments(ancestor);
  const s = segments(scope);
  return a.length <= s.length && a.every((segment, i) => segment === s[i]);
}

export function sameScope(a: string, b: string): boolean {
  return isAtOrAbove(a, b) && isAtOrAbove(b, a);
}

/** The subscription a scope lies in, or undefined for the root and management groups. */
export function subscriptionOf(scope: string): string | undefined {
  const s = normalizeScope(scope).split('/');
  return s[1]?.toLowerCase() === 'subscriptions' && s[2] ? s[2] : undefined;
}

/**
 * Splits a request path into the scope and the Microsoft.Authorization collection or item it
 * names; undefined for any other path. The scope keeps the caller's casing.
 */
export function parseAuthorizationPath(path: string): AuthorizationPath | undefined {
  const normalized = normalizeScope(decodeURIComponent(path));
  const at = normalized.toLowerCase().lastIndexOf(PROVIDER);
  if (at < 0) return undefined;
  const scope = normalizeScope(normalized.slice(0, at));
  const rest = normalized.slice(at + PROVIDER.length).split('/');
  const [collection, name, extra] = rest;
  if (extra !== undefined || collection === undefined) return undefined;
  const type = collection.toLowerCase();
  if (type === 'roleassignments') {
    return name === undefined ? { kind: 'roleAssignments', scope } : { kind: 'roleAssignment', scope, name };
  }
  if (type === 'roledefinitions') {
    return name === undefined ? { kind: 'roleDefinitions', scope } : { kind: 'roleDefinition', scope, name };
  }
  return undefined;
}

/** `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{a}/blobServices/default/containers/{c}`. */
export function containerScope(
  account: { subscriptionId: string; resourceGroup: string; name: string },
  container: string,
): string {
  return (
    `/subscriptions/${account.subscriptionId}/resourceGroups/${account.resourceGroup}` +
    `/providers/Microsoft.Storage/storageAccounts/${account.name}/blobServices/default/containers/${container}`
  );
}
