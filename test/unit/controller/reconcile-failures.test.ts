// How the access reconciler reports what goes wrong, with fakes for the cluster, Azure and the
// database:
// - an error thrown out of a step (ARM 403, a retryable ARM error, a PostgreSQL failure) ends in
//   that step's condition and Ready=False with a reason and a message, and one Warning Event; it
//   is still rethrown (the work queue backs off and counts it), and the same failure again writes
//   no status and sends no second Event;
// - grants on objects that do not exist (planGrants' `missing`) are GrantTargetNotFound, not Ready;
// - a role created by a reconcile that then failed is recorded in status.applied at once, and the
//   deletion drops it; the deletion works on the live object, not on a stale cache;
// - a 404 on the object itself (deleted meanwhile) ends the reconcile without an error.
import { describe, expect, it } from 'vitest';
import { Reason } from '../../../src/api/constants.ts';
import type {
  AppliedStatus,
  EntraDatabaseAccess,
  EntraDatabaseAccessStatus,
} from '../../../src/api/types.ts';
import { ArmWritePaced, AzureAccessDenied, AzureRetryableError } from '../../../src/azure/arm-errors.ts';
import { RoleCreatedError } from '../../../src/controller/database.ts';
import { failureOf, redactSecrets } from '../../../src/controller/reconcile/failures.ts';
import { missingObjectsMessage } from '../../../src/controller/steps/missing-objects.ts';
import { RetryAfterError, retryAfterMsOf } from '../../../src/controller/workqueue.ts';
import { accessBody, reconciler, world } from '../../support/controller-fakes.ts';

/** An error as @kubernetes/client-node throws it: `code` is the HTTP status. */
function apiError(code: number, message: string): Error {
  return Object.assign(
    new Error(
      `HTTP-Code: ${code}\nMessage: Unknown API Status Code!\nBody: ${JSON.stringify({ message })}\nHeaders: {"authorization":"Bearer abc.def"}`,
    ),
    { code, body: JSON.stringify({ kind: 'Status', message }) },
  );
}

describe('failureOf: an error thrown out of a step, as its condition shows it', () => {
  const denied = new AzureAccessDenied('GET identity id0', 403, 'AuthorizationFailed');
  const throttled = new AzureRetryableError(
    'PUT federated credential',
    {
      kind: 'throttled',
      statusCode: 429,
      code: undefined,
      message: 'Too many requests',
      retryAfterMs: 12_000,
    },
    12_000,
    3,
  );
  const cases: Array<{
    what: string;
    error: unknown;
    system: Parameters<typeof failureOf>[1];
    reason: string;
    says: RegExp;
  }> = [
    {
      what: 'ARM 403 on the identity',
      error: denied,
      system: 'azure',
      reason: Reason.AzureRequestFailed,
      says: /^Azure denied GET identity id0 \(403: AuthorizationFailed\): give the operator's identity/,
    },
    {
      what: 'a retryable ARM error after retries, wrapped for the work queue',
      error: new RetryAfterError(throttled.message, 12_000, { cause: throttled }),
      system: 'azure',
      reason: Reason.AzureRequestFailed,
      says: /^PUT federated credential failed after 3 attempt\(s\): 429 Too many requests$/,
    },
    {
      what: 'an ARM error of no known class',
      error: new Error('socket hang up'),
      system: 'azure',
      reason: Reason.AzureRequestFailed,
      says: /^Azure request failed: socket hang up$/,
    },
    {
      what: 'a Kubernetes 403 on the ServiceAccount',
      error: apiError(403, 'serviceaccounts "app" is forbidden'),
      system: 'kubernetes',
      reason: Reason.KubernetesRequestFailed,
      says: /^Kubernetes request failed: 403: serviceaccounts "app" is forbidden: check the operator's RBAC/,
    },
    {
      what: 'a PostgreSQL connection failure',
      error: Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' }),
      system: 'postgres',
      reason: Reason.DatabaseRequestFailed,
      says: /^PostgreSQL: connect ECONNREFUSED 10\.0\.0\.5:5432$/,
    },
    {
      what: 'a Kubernetes error before any step (the finalizer)',
      error: apiError(403, 'entradatabaseaccesses "a" is forbidden'),
      system: undefined,
      reason: Reason.KubernetesRequestFailed,
      says: /^Kubernetes request failed: 403: entradatabaseaccesses "a" is forbidden$/,
    },
  ];
  it.each(cases)('$what → $reason', ({ error, system, reason, says }) => {
    const failure = failureOf(error, system);
    expect(failure?.reason).toBe(reason);
    expect(failure?.message).toMatch(says);
    expect(failure?.message).not.toMatch(/Bearer abc|Headers/);
  });

  it('reports no failure for a FIC write waiting for its turn under the operator pacing', () => {
    const paced = Object.assign(new Error('waits for its turn; retrying in 3s'), { code: 'ClientPacing' });
    expect(failureOf(new RetryAfterError(paced.message, 3000, { cause: paced }), 'azure')).toBe(undefined);
  });

  it('never puts a token or password in a message', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    expect(redactSecrets(`Authorization: Bearer ${jwt} password=hunter2 token ${jwt}`)).toBe(
      'Authorization: Bearer [redacted] password=[redacted] token [redacted token]',
    );
    const failure = failureOf(new Error(`password authentication failed (password=${jwt})`), 'postgres');
    expect(failure?.message).not.toContain(jwt);
  });
});

describe('missingObjectsMessage', () => {
  it('names each missing object and what to do about it', () => {
    const message = missingObjectsMessage('app', [
      { kind: 'schema', database: 'shop', name: 'reports' },
      { kind: 'table', database: 'shop', schema: 'public', name: 'orders' },
      { kind: 'group', database: 'shop', name: 'readers' },
    ]);
    expect(message).toContain(
      'schema "reports" does not exist in database "shop": create schema "reports" in database "shop", or remove it from spec.grants',
    );
    expect(message).toContain('table "public"."orders" does not exist in database "shop": create it');
    expect(message).toContain(
      'group role "readers" does not exist: create it, or remove it from spec.memberOf',
    );
    expect(message).toMatch(/Role app has the other grants/);
  });
});

// --- The reconciler, with fakes (test/support/controller-fakes.ts) ---

function accessWith(
  over: { status?: EntraDatabaseAccessStatus; deleting?: boolean } = {},
): EntraDatabaseAccess {
  return accessBody({
    ...(over.status ? { status: over.status } : {}),
    ...(over.deleting ? { deleting: true } : {}),
  });
}

const condition = (status: EntraDatabaseAccessStatus | undefined, type: string) =>
  status?.conditions?.find((c) => c.type === type);

describe('the access reconciler reports errors thrown out of a step', () => {
  it('ARM 403 on the identity: IdentityResolved and Ready False, one Warning, rethrown; the same again writes nothing', async () => {
    const denied = new AzureAccessDenied('GET identity id0', 403, 'AuthorizationFailed');
    const w = world({
      getIdentity: async () => {
        throw denied;
      },
    });
    await expect(reconciler(w)('apps/a')).rejects.toBe(denied);
    expect(w.statusWrites).toHaveLength(1);
    const status = w.statusWrites[0];
    expect(condition(status, 'IdentityResolved')).toMatchObject({
      status: 'False',
      reason: Reason.AzureRequestFailed,
    });
    expect(condition(status, 'IdentityResolved')?.message).toMatch(/Azure denied GET identity id0/);
    expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: Reason.AzureRequestFailed });
    expect(w.warnings).toEqual([
      { reason: Reason.AzureRequestFailed, message: expect.stringMatching(/Azure denied/) },
    ]);

    // The next attempt sees the status written: nothing changes, so no write and no Event.
    w.access = accessWith({ status });
    w.live = w.access;
    await expect(reconciler(w)('apps/a')).rejects.toBe(denied);
    expect(w.statusWrites).toHaveLength(1);
    expect(w.warnings).toHaveLength(1);
  });

  it('a PostgreSQL failure: DatabaseRoleReady False DatabaseRequestFailed, rethrown', async () => {
    const failure = new Error('connect ECONNREFUSED 10.0.0.5:5432');
    const w = world({
      ensure: async () => {
        throw failure;
      },
    });
    await expect(reconciler(w)('apps/a')).rejects.toBe(failure);
    expect(condition(w.statusWrites[0], 'DatabaseRoleReady')).toMatchObject({
      status: 'False',
      reason: Reason.DatabaseRequestFailed,
      message: 'PostgreSQL: connect ECONNREFUSED 10.0.0.5:5432',
    });
    expect(condition(w.statusWrites[0], 'IdentityResolved')?.status).toBe('True');
    expect(w.warnings.map((e) => e.reason)).toEqual([Reason.DatabaseRequestFailed]);
  });

  it('a steady state with nothing wrong writes no status', async () => {
    const w = world();
    await reconciler(w)('apps/a');
    expect(w.statusWrites).toHaveLength(1);
    expect(condition(w.statusWrites[0], 'Ready')?.status).toBe('True');
    w.access = accessWith({ status: w.statusWrites[0] });
    w.live = w.access;
    await reconciler(w)('apps/a');
    expect(w.statusWrites).toHaveLength(1);
    expect(w.warnings).toEqual([]);
  });
});

describe('the operator pacing its own FIC writes', () => {
  it('requeues at the reserved slot: no error, no status write, no Event', async () => {
    const w = world({
      ensureFic: async () => {
        throw new ArmWritePaced('PUT FIC fic-app', 3_500);
      },
    });
    await expect(reconciler(w)('apps/a')).resolves.toEqual({ requeueAfterMs: 3_500 });
    expect(w.statusWrites).toEqual([]);
    expect(w.warnings).toEqual([]);
  });
});

describe("the operator's own identity", () => {
  it('is refused once resolved, before any FIC: IdentityNotAllowed, a Warning, no database step', async () => {
    let fics = 0;
    const w = world({
      operatorClientId: 'CLIENT-1',
      ensureFic: async () => {
        fics++;
        throw new Error('must not be called');
      },
      ensure: async () => {
        throw new Error('must not be called');
      },
    });
    await reconciler(w)('apps/a');
    expect(fics).toBe(0);
    expect(condition(w.statusWrites[0], 'Ready')).toMatchObject({
      status: 'False',
      reason: Reason.IdentityNotAllowed,
    });
    expect(w.warnings.map((e) => e.reason)).toEqual([Reason.IdentityNotAllowed]);
  });
});

describe('grants on objects that do not exist', () => {
  it('are GrantTargetNotFound, not Ready; the rest is recorded; retried with backoff as an error', async () => {
    const applied: AppliedStatus = {
      server: 'pg',
      role: 'app',
      database: 'shop',
      memberOf: ['readers'],
      grants: [{ target: 'database', privileges: ['CONNECT'] }],
    };
    const w = world({
      ensure: async () => ({
        user: 'app',
        adoptedExisting: false,
        applied,
        missing: [{ kind: 'group', database: 'shop', name: 'readers' }],
      }),
    });
    const error = await reconciler(w)('apps/a').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect(retryAfterMsOf(error)).toBe(5000);
    const status = w.statusWrites[0];
    expect(condition(status, 'DatabaseRoleReady')).toMatchObject({
      status: 'False',
      reason: Reason.GrantTargetNotFound,
    });
    expect(condition(status, 'DatabaseRoleReady')?.message).toMatch(
      /group role "readers" does not exist: create it, or remove it from spec\.memberOf/,
    );
    expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: Reason.GrantTargetNotFound });
    expect(status?.applied).toEqual(applied);
    expect(status?.connection?.user).toBe('app');
    expect(w.warnings.map((e) => e.reason)).toEqual([Reason.GrantTargetNotFound]);

    // Still missing: no second write, no second Event.
    w.access = accessWith({ status });
    w.live = w.access;
    await expect(reconciler(w)('apps/a')).rejects.toThrow(/does not exist/);
    expect(w.statusWrites).toHaveLength(1);
    expect(w.warnings).toHaveLength(1);

    // Created meanwhile: Ready.
    w.ensure = async () => ({ user: 'app', adoptedExisting: false, applied, missing: [] });
    await reconciler(w)('apps/a');
    expect(condition(w.statusWrites[1], 'Ready')?.status).toBe('True');
  });
});

describe('a role created by a reconcile that then failed', () => {
  it('is recorded in status.applied, and deleting the resource drops it', async () => {
    const cause = Object.assign(new Error('database "nodb" does not exist'), { code: '3D000' });
    const recorded: AppliedStatus = { server: 'pg', role: 'app', database: 'shop', memberOf: [], grants: [] };
    const w = world({
      ensure: async () => {
        throw new RoleCreatedError(recorded, cause);
      },
    });
    await expect(reconciler(w)('apps/a')).rejects.toBe(cause);
    const status = w.statusWrites[0];
    expect(status?.applied).toEqual(recorded);
    expect(condition(status, 'DatabaseRoleReady')).toMatchObject({
      status: 'False',
      reason: Reason.DatabaseRequestFailed,
      message: 'PostgreSQL: database "nodb" does not exist',
    });

    // Deleted while the cache still has the status from before the role was recorded: the
    // deletion reads the live object and drops the role it recorded.
    w.access = accessWith({ deleting: true });
    w.live = accessWith({ deleting: true, status });
    await reconciler(w)('apps/a');
    expect(w.removed).toHaveLength(1);
    expect(w.removed[0]).toMatchObject({ dropRole: true, applied: recorded });
  });
});

describe('an object deleted while it is reconciled', () => {
  it('ends the deletion without an error once the live object is gone (stale cache)', async () => {
    const w = world({ access: accessWith({ deleting: true }) });
    w.live = undefined;
    await expect(reconciler(w)('apps/a')).resolves.toEqual({});
    expect(w.removed).toEqual([]);
  });

  it('ends without an error when the status write answers 404', async () => {
    const w = world({
      patchStatus: async () => {
        throw Object.assign(new Error('HTTP-Code: 404 entradatabaseaccesses "a" not found'), { code: 404 });
      },
    });
    await expect(reconciler(w)('apps/a')).resolves.toEqual({});
  });

  it('ends without an error when removing the finalizer answers 404', async () => {
    const applied: AppliedStatus = { server: 'pg', role: 'app', database: 'shop', memberOf: [], grants: [] };
    const w = world({ access: accessWith({ deleting: true, status: { applied } }) });
    // Gone between the live read and the finalizer patch.
    w.onRemove = () => {
      w.live = undefined;
    };
    await expect(reconciler(w)('apps/a')).resolves.toEqual({});
    expect(w.removed).toHaveLength(1);
  });
});
