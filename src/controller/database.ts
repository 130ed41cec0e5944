// The database side of the reconcilers, bound to the PostgreSQL layer: pools per server that log
// in as the server's Entra admin role with a token, principal creation, grant planning against the
// live catalog (so a no-change reconcile runs no DDL), and role removal that never drops data.
import type * as k8s from '@kubernetes/client-node';
import type { AppliedStatus, EntraDatabaseAccess, EntraDatabaseServer, Grant } from '../api/types.ts';
import { DEFAULT_PORT, DEFAULT_SSL_MODE, DEFAULT_SSL_ROOT_CERT_KEY } from '../api/types.ts';
import type { TokenSource } from '../azure/credentials.ts';
import type { Logger } from '../observability/logger.ts';
import { type AccessRecord, catalogQueries, planGrants } from '../postgres/grant-plan.ts';
import type { AdminFacts, GrantRefusal } from '../postgres/grant-refusals.ts';
import { PoolRegistry, type PoolTarget } from '../postgres/pools.ts';
import type { MissingObject } from '../postgres/privilege-set.ts';
import { recordInForce } from '../postgres/record-in-force.ts';
import {
  ADMIN_DATABASE,
  applyPlan,
  currentPrivileges,
  dropRole,
  ensurePrincipal,
  type PoolFor,
  serverInfo,
} from '../postgres/roles.ts';
import type { ServerProbe } from './server-reconciler.ts';

/** What another access resource sharing the role (same identity, same server) asks for. */
export interface SharedRoleRequest {
  database: string;
  memberOf: string[];
  grants: NonNullable<EntraDatabaseAccess['spec']['grants']>;
}

/** The database side of EntraDatabaseAccess, as the DatabaseRoleReady step and the clean-up use it. */
export interface DatabaseOps {
  ensure(input: {
    server: EntraDatabaseServer;
    role: string;
    principalId: string;
    database: string;
    memberOf: string[];
    grants: NonNullable<EntraDatabaseAccess['spec']['grants']>;
    applied: AppliedStatus | undefined;
    /** Never revoked: the other resources sharing the role still ask for it. */
    keep?: SharedRoleRequest[];
  }): Promise<{
    user: string;
    adoptedExisting: boolean;
    applied: AppliedStatus;
    /** Objects the grants or memberOf name that do not exist: not granted, the rest is. */
    missing?: MissingObject[];
    /**
     * Grants (and revokes) the server refused the admin: not in force, and not in `applied`,
     * which records what is; the rest was applied.
     */
    refused?: GrantRefusal[];
    /** Who the admin is on the server, when something was refused (for the advice). */
    admin?: AdminFacts;
  }>;
  remove(input: {
    server: EntraDatabaseServer;
    applied: AppliedStatus;
    dropRole: boolean;
    /** With dropRole false: what the others sharing the role still ask for, never revoked. */
    keep?: SharedRoleRequest[];
    /**
     * With dropRole: spec.ownedObjects Reassign's role, which receives what the role owns so the
     * role can be dropped. Undefined (Keep): a role that owns objects is kept without login.
     */
    reassignTo?: string | undefined;
  }): Promise<{
    dropped: boolean;
    ownedObjects: string[];
    /** With reassignTo: how many objects changed owner, and in which databases. */
    reassigned?: { objects: number; databases: string[] };
  }>;
}

/**
 * ensure() created the role and then failed (the database does not exist, a group cannot be
 * granted): `applied` records the role, with nothing granted, so the status holds it as soon as it
 * exists and a deletion drops it. `cause` is the failure.
 */
export class RoleCreatedError extends Error {
  override readonly name = 'RoleCreatedError';
  readonly applied: AppliedStatus;

  constructor(applied: AppliedStatus, cause: unknown) {
    super((cause as Error)?.message ?? String(cause), { cause });
    this.applied = applied;
  }
}

export interface PostgresDatabaseOptions {
  core: k8s.CoreV1Api;
  /** The token source for a scope (one per scope, so each caches its own token). */
  tokensFor: (scope: string) => TokenSource;
  defaultScope: string;
  logger: Logger;
}

function toRecord(applied: AppliedStatus | undefined): AccessRecord | undefined {
  if (!applied?.role || !applied.database) return undefined;
  return {
    role: applied.role,
    database: applied.database,
    memberOf: applied.memberOf ?? [],
    grants: appliedGrants(applied.grants),
  };
}

/**
 * status.applied.grants as the planner takes them. Until v1alpha1 renamed the grant field `on` to
 * `target`, the operator recorded `on`, and the schema keeps unknown fields of applied grants, so a
 * status written then still says `on`: it is read as `target`. Without that the first reconcile
 * after an upgrade could not plan (and a deletion could not revoke) until someone edited the
 * status, and skipping those grants would leave privileges removed from the spec meanwhile granted
 * for good. The next status write records `target`. Read for one release, then remove.
 */
export function appliedGrants(grants: readonly Grant[] | undefined): Grant[] {
  return (grants ?? []).map((grant) => {
    const { on, ...rest } = grant as unknown as Record<string, unknown>;
    if (on === undefined) return grant;
    return (rest.target === undefined ? { ...rest, target: on } : rest) as unknown as Grant;
  });
}

/** What the other access resources sharing `role` ask for, as records of that role. */
function keptRecords(role: string, keep: readonly SharedRoleRequest[] | undefined): AccessRecord[] {
  return (keep ?? []).map((k) => ({ role, database: k.database, memberOf: k.memberOf, grants: k.grants }));
}

const CA_TTL_MS = 30_000;

export class PostgresDatabase implements DatabaseOps, ServerProbe {
  readonly #core: k8s.CoreV1Api;
  readonly #options: PostgresDatabaseOptions;
  readonly #pools: PoolRegistry;
  readonly #caCache = new Map<string, { pem: string; at: number }>();

  constructor(options: PostgresDatabaseOptions) {
    this.#core = options.core;
    this.#options = options;
    this.#pools = new PoolRegistry({
      applicationName: 'entra-access',
      onPoolError: (error, key) =>
        options.logger.warn({ pool: key, err: error.message }, 'idle PostgreSQL connection failed'),
    });
  }

  /**
   * The CA to verify the server with, from spec.sslRootCertSecretRef; undefined means the system
   * store. Kept for CA_TTL_MS: every reconcile needs it, and one GET per reconcile was 1,000
   * apiserver reads per resync at 1,000 resources; a rotated CA is picked up within the TTL.
   */
  async #caPem(server: EntraDatabaseServer): Promise<string | undefined> {
    const ref = server.spec.sslRootCertSecretRef;
    if (!ref) return undefined;
    const key = ref.key ?? DEFAULT_SSL_ROOT_CERT_KEY;
    const cacheKey = `${ref.namespace}/${ref.name}/${key}`;
    const now = Date.now();
    const cached = this.#caCache.get(cacheKey);
    if (cached && now - cached.at < CA_TTL_MS) return cached.pem;
    const secret = await this.#core.readNamespacedSecret({ name: ref.name, namespace: ref.namespace });
    const data = secret.data?.[key];
    if (!data) throw new Error(`Secret ${ref.namespace}/${ref.name} has no key ${key}`);
    const pem = Buffer.from(data, 'base64').toString('utf8');
    this.#caCache.set(cacheKey, { pem, at: now });
    return pem;
  }

  async #poolFor(server: EntraDatabaseServer): Promise<PoolFor> {
    const caPem = await this.#caPem(server);
    const scope = server.spec.tokenScope ?? this.#options.defaultScope;
    const tokens = this.#options.tokensFor(scope);
    const source = {
      getToken: () => tokens.getPostgresToken(),
      onAuthFailure: () => {
        tokens.invalidate();
      },
    };
    return (database: string) => {
      const target: PoolTarget = {
        host: server.spec.host,
        port: server.spec.port ?? DEFAULT_PORT,
        database,
        user: server.spec.adminRole,
        sslMode: server.spec.sslMode ?? DEFAULT_SSL_MODE,
        caPem,
      };
      return this.#pools.get(target, source);
    };
  }

  async probe(server: EntraDatabaseServer): Promise<{ version: string; entraFunctions: boolean }> {
    const poolFor = await this.#poolFor(server);
    const info = await serverInfo(poolFor(ADMIN_DATABASE));
    return { version: info.version, entraFunctions: info.pgaadauth && info.entraAdmin !== false };
  }

  async ensure(input: Parameters<DatabaseOps['ensure']>[0]): ReturnType<DatabaseOps['ensure']> {
    const poolFor = await this.#poolFor(input.server);
    const principal = await ensurePrincipal(poolFor(ADMIN_DATABASE), {
      role: input.role,
      principalId: input.principalId,
    });
    const desired: AccessRecord = {
      role: principal.role,
      database: input.database,
      memberOf: input.memberOf,
      grants: input.grants,
    };
    try {
      // A record from another server cannot be revoked through this one's connections.
      const previous =
        input.applied?.server === input.server.metadata.name ? toRecord(input.applied) : undefined;
      const keep = keptRecords(principal.role, input.keep);
      const snapshots = await Promise.all(
        catalogQueries(desired, previous, keep).map((query) =>
          currentPrivileges(poolFor(query.database), query),
        ),
      );
      const plan = planGrants({ desired, applied: previous, keep, snapshots });
      // Objects that do not exist (plan.missing) are left out of plan.statements; the rest is
      // applied anyway. That is friendlier (a missing table the app's migrations create later
      // does not hold back CONNECT and the other grants) and just as idempotent: the next
      // reconcile plans only what is still missing. The caller reports `missing` and retries.
      // The same goes for what the server refuses the admin (an object owned by a role it may
      // not grant on): the rest is applied, and `applied` records exactly what is in force.
      const result = await applyPlan(poolFor, plan.statements, { keepGoing: true });
      const applied: AppliedStatus = {
        server: input.server.metadata.name ?? '',
        principalId: input.principalId,
        ...plan.applied,
      };
      if (result.refused.length > 0) {
        const snapshot = snapshots.find((s) => s.role === desired.role && s.database === desired.database);
        const inForce = recordInForce({
          desired,
          snapshot: snapshot!,
          refused: result.refused.map((refusal) => refusal.statement),
        });
        // A revoke refused in the database the spec moved away from cannot be recorded with the
        // new one: the earlier record stays, and the next reconcile tries that revoke again.
        if (inForce.elsewhere.length > 0 && input.applied) Object.assign(applied, input.applied);
        else Object.assign(applied, inForce.record);
      }
      return {
        user: principal.role,
        adoptedExisting: principal.adoptedExisting,
        applied,
        missing: plan.missing,
        ...(result.refused.length > 0 ? { refused: result.refused, admin: result.admin } : {}),
      };
    } catch (error) {
      // The role was made in this call and the grants failed: hand back a record of the role
      // (nothing granted) so the status names it and a deletion drops it. A role that existed
      // before is not recorded here: the operator did not create it.
      if (!principal.created) throw error;
      throw new RoleCreatedError(
        {
          server: input.server.metadata.name ?? '',
          principalId: input.principalId,
          role: principal.role,
          database: input.database,
          memberOf: [],
          grants: [],
        },
        error,
      );
    }
  }

  async remove(input: Parameters<DatabaseOps['remove']>[0]): ReturnType<DatabaseOps['remove']> {
    const record = toRecord(input.applied);
    if (!record) return { dropped: true, ownedObjects: [] };
    const poolFor = await this.#poolFor(input.server);
    if (input.dropRole) {
      const result = await dropRole(poolFor, {
        role: record.role,
        applied: record,
        reassignTo: input.reassignTo,
      });
      if (result.dropped) {
        const reassigned = result.reassigned;
        return {
          dropped: true,
          ownedObjects: [],
          ...(reassigned
            ? { reassigned: { objects: reassigned.objects, databases: reassigned.databases } }
            : {}),
        };
      }
      const owned =
        result.reason === 'RoleOwnsObjects'
          ? result.objects.map((o) => (o.database ? `${o.description} in ${o.database}` : o.description))
          : [result.detail];
      return { dropped: false, ownedObjects: owned };
    }
    // The role is shared with another access resource: take back only what this one granted.
    // And not what the others sharing it still ask for.
    const empty: AccessRecord = { role: record.role, database: record.database, memberOf: [], grants: [] };
    const keep = keptRecords(record.role, input.keep);
    const snapshots = await Promise.all(
      catalogQueries(empty, record, keep).map((query) => currentPrivileges(poolFor(query.database), query)),
    );
    await applyPlan(poolFor, planGrants({ desired: empty, applied: record, keep, snapshots }).statements);
    return { dropped: false, ownedObjects: [] };
  }

  end(): Promise<void> {
    return this.#pools.end();
  }
}
