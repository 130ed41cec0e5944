// EntraDatabaseAccess resources indexed by the PostgreSQL role names they involve: the role each
// asks for on its server, the roles each logs in as, and the group roles each joins or would give
// its objects to on deletion (spec.ownedObjects.reassignTo). The admission
// rules ask "is this role name taken on this server" and "is this group another identity's login
// role" of it, and a change to one resource re-queues only the resources whose verdict it can
// change, instead of a scan of every resource per reconcile (O(n²) at start-up). Pure.
import { type EntraDatabaseAccess, reassignTargetOf } from '../api/types.ts';
import { identityIdKey } from '../azure/identity-id.ts';
import { createdAt } from '../kube/objects.ts';
import { MultiMap } from '../util/multimap.ts';

/** The PostgreSQL role an access resource asks for: spec.roleName, else metadata.name. */
export function roleNameOf(access: EntraDatabaseAccess): string {
  return access.spec.roleName || access.metadata.name || '';
}

/** What the index keeps of one access resource. */
export interface RoleClaim {
  namespace: string;
  name: string;
  createdAt: number;
  /** spec.identity.resourceId as written. */
  identityResourceId: string;
  server: string;
  /** The role it asks for, as written. */
  requested: string;
  /** Lower-cased: the role it asks for and the ones it was given (status.applied, connection). */
  loginRoles: string[];
  /** Lower-cased spec.memberOf, and spec.ownedObjects.reassignTo with policy Reassign: held to the same rules. */
  memberOf: string[];
}

export function claimOf(access: EntraDatabaseAccess): RoleClaim | undefined {
  const { namespace, name } = access.metadata;
  if (!namespace || !name || !access.spec) return undefined;
  const requested = roleNameOf(access);
  const login = [requested, access.status?.applied?.role, access.status?.connection?.user]
    .filter((role): role is string => Boolean(role))
    .map((role) => role.toLowerCase());
  return {
    namespace,
    name,
    createdAt: createdAt(access),
    identityResourceId: access.spec.identity?.resourceId ?? '',
    server: access.spec.serverRef,
    requested,
    loginRoles: [...new Set(login)],
    memberOf: [
      ...new Set(
        [...(access.spec.memberOf ?? []), reassignTargetOf(access.spec) ?? '']
          .filter(Boolean)
          .map((group) => group.toLowerCase()),
      ),
    ],
  };
}

/** Whether `a` came first: for a contested role name, the first claimant keeps it. */
export function claimCameFirst(a: Pick<RoleClaim, 'createdAt' | 'namespace' | 'name'>, b: typeof a): boolean {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  return `${a.namespace}/${a.name}` < `${b.namespace}/${b.name}`;
}

export function differentIdentity(a: RoleClaim, b: RoleClaim): boolean {
  return identityIdKey(a.identityResourceId) !== identityIdKey(b.identityResourceId);
}

const keyOf = (claim: Pick<RoleClaim, 'namespace' | 'name'>) => `${claim.namespace}/${claim.name}`;

const serverRole = (server: string, role: string) => `${server}\u0000${role.toLowerCase()}`;

export class DatabaseRoleIndex {
  readonly #claims = new Map<string, RoleClaim>();
  readonly #byRequested = new MultiMap<RoleClaim>(keyOf);
  readonly #byLogin = new MultiMap<RoleClaim>(keyOf);
  readonly #byMember = new MultiMap<RoleClaim>(keyOf);
  readonly #byServer = new MultiMap<RoleClaim>(keyOf);

  /** Adds or replaces the claim of `access`; returns the one replaced. */
  set(access: EntraDatabaseAccess): RoleClaim | undefined {
    const claim = claimOf(access);
    if (!claim) return undefined;
    const previous = this.delete(claim.namespace, claim.name);
    this.#claims.set(keyOf(claim), claim);
    this.#byRequested.add(serverRole(claim.server, claim.requested), claim);
    for (const role of claim.loginRoles) this.#byLogin.add(role, claim);
    for (const group of claim.memberOf) this.#byMember.add(group, claim);
    this.#byServer.add(claim.server, claim);
    return previous;
  }

  delete(namespace: string, name: string): RoleClaim | undefined {
    const claim = this.#claims.get(`${namespace}/${name}`);
    if (!claim) return undefined;
    this.#claims.delete(keyOf(claim));
    this.#byRequested.delete(serverRole(claim.server, claim.requested), claim);
    for (const role of claim.loginRoles) this.#byLogin.delete(role, claim);
    for (const group of claim.memberOf) this.#byMember.delete(group, claim);
    this.#byServer.delete(claim.server, claim);
    return claim;
  }

  /** Resources asking for `role` on `server` (any case). */
  requesting(server: string, role: string): RoleClaim[] {
    return this.#byRequested.get(serverRole(server, role));
  }

  /** Resources that log in as `role` (any case), on any server. */
  loggingInAs(role: string): RoleClaim[] {
    return this.#byLogin.get(role.toLowerCase());
  }

  /** Resources on `server`. */
  onServer(server: string): RoleClaim[] {
    return this.#byServer.get(server);
  }

  /**
   * Resources of another identity whose admission verdict a change to `claim` can change: those
   * asking for the same role name on its server (RoleNameInUse), and those joining one of its
   * login roles or giving their objects to one (MemberOfNotAllowed, ReassignTargetNotAllowed:
   * another identity's login role). Resources of the same
   * identity share the role and are never refused for it.
   */
  contenders(claim: RoleClaim): RoleClaim[] {
    const found = new Map<string, RoleClaim>();
    for (const other of this.requesting(claim.server, claim.requested)) found.set(keyOf(other), other);
    for (const role of claim.loginRoles)
      for (const other of this.#byMember.get(role)) found.set(keyOf(other), other);
    found.delete(keyOf(claim));
    return [...found.values()].filter((other) => differentIdentity(other, claim));
  }
}
