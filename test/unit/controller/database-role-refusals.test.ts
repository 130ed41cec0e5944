// The access reconciler on what the database refuses (issue 13 §2), with fakes for the cluster,
// Azure and the database:
// - grants the server refused are GrantNotPermitted, never Ready; what is in force is recorded in
//   status.applied; retried with backoff as an error; the same refusal again writes no status;
// - a principal pgaadauth could not validate is PrincipalNotValidated with the three causes,
//   retried with backoff, and Ready once it validates.
import { describe, expect, it } from 'vitest';
import { Reason } from '../../../src/api/constants.ts';
import type {
  AppliedStatus,
  EntraDatabaseAccess,
  EntraDatabaseAccessStatus,
} from '../../../src/api/types.ts';
import type { DatabaseOps } from '../../../src/controller/database.ts';
import {
  DATABASE_RETRY_MS,
  principalNotValidatedMessage,
} from '../../../src/controller/steps/database-role.ts';
import { retryAfterMsOf } from '../../../src/controller/workqueue.ts';
import { GrantNotPermittedError, refusalOf } from '../../../src/postgres/grant-refusals.ts';
import { PrincipalNotValidatedError } from '../../../src/postgres/roles.ts';
import { accessBody, reconciler, world } from '../../support/controller-fakes.ts';

const condition = (status: EntraDatabaseAccessStatus | undefined, type: string) =>
  status?.conditions?.find((c) => c.type === type);

const accessWith = (status: EntraDatabaseAccessStatus): EntraDatabaseAccess => accessBody({ status });

async function failure(run: Promise<unknown>): Promise<unknown> {
  return run.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('grants the server refused', () => {
  const inForce: AppliedStatus = {
    server: 'pg',
    role: 'app',
    database: 'shop',
    memberOf: ['readers'],
    grants: [{ target: 'database', privileges: ['CONNECT'] }],
  };
  const refused = refusalOf(
    {
      action: 'grant',
      database: 'shop',
      scope: 'database',
      sql: 'GRANT SELECT ON TABLE "app"."ledger" TO "app"',
      entries: [
        { role: 'app', database: 'shop', kind: 'table', schema: 'app', name: 'ledger', privilege: 'SELECT' },
      ],
    },
    '01007',
    'no privileges were granted for "ledger"',
    'azuresu',
  );
  const refusing: DatabaseOps['ensure'] = async () => ({
    user: 'app',
    adoptedExisting: false,
    applied: inForce,
    missing: [],
    refused: [refused],
    admin: { role: 'admin', azurePgAdmin: true },
  });

  it('are GrantNotPermitted, not Ready; what is in force is recorded; retried with backoff as an error', async () => {
    const w = world({ ensure: refusing });
    const error = await failure(reconciler(w)('apps/a'));
    expect(error).toBeInstanceOf(Error);
    expect(retryAfterMsOf(error)).toBe(DATABASE_RETRY_MS);
    const status = w.statusWrites[0];
    expect(condition(status, 'DatabaseRoleReady')).toMatchObject({
      status: 'False',
      reason: Reason.GrantNotPermitted,
    });
    expect(condition(status, 'DatabaseRoleReady')?.message).toMatch(
      /^role "app": not permitted: SELECT on table "app"\."ledger" in database "shop" \(owner "azuresu"\): no privileges were granted for "ledger"\. .*member of azure_pg_admin/,
    );
    expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: Reason.GrantNotPermitted });
    expect(status?.applied).toEqual(inForce);
    expect(status?.connection?.user).toBe('app');
    expect(w.warnings.map((e) => e.reason)).toEqual([Reason.GrantNotPermitted]);

    // Refused again: no second write, no second Event.
    w.access = accessWith(status!);
    w.live = w.access;
    await expect(reconciler(w)('apps/a')).rejects.toThrow(/not permitted/);
    expect(w.statusWrites).toHaveLength(1);
    expect(w.warnings).toHaveLength(1);

    // The owner let the admin grant it: Ready.
    w.ensure = async () => ({ user: 'app', adoptedExisting: false, applied: inForce, missing: [] });
    await reconciler(w)('apps/a');
    expect(condition(w.statusWrites[1], 'Ready')?.status).toBe('True');
  });

  it('names the objects that do not exist as well, under GrantNotPermitted', async () => {
    const w = world({
      ensure: async () => ({
        ...(await refusing({} as never)),
        missing: [{ kind: 'table', database: 'shop', schema: 'app', name: 'later' }],
      }),
    });
    await failure(reconciler(w)('apps/a'));
    const message = condition(w.statusWrites[0], 'DatabaseRoleReady')?.message ?? '';
    expect(condition(w.statusWrites[0], 'DatabaseRoleReady')?.reason).toBe(Reason.GrantNotPermitted);
    expect(message).toContain('"app"."ledger"');
    expect(message).toContain('Also: table "app"."later" does not exist in database "shop"');
  });

  it('a refusal thrown by an all-or-nothing apply keeps its own reason', async () => {
    const thrown = new GrantNotPermittedError('shop', [refused], { role: 'admin', azurePgAdmin: false });
    const w = world({
      ensure: async () => {
        throw thrown;
      },
    });
    await expect(reconciler(w)('apps/a')).rejects.toBe(thrown);
    expect(condition(w.statusWrites[0], 'DatabaseRoleReady')).toMatchObject({
      reason: Reason.GrantNotPermitted,
      message: expect.stringContaining('"admin" is not a member of azure_pg_admin'),
    });
  });
});

describe('a principal pgaadauth could not validate', () => {
  const cause = Object.assign(
    new Error('Could not validate AAD user principal-1 because its name is not found in the tenant.'),
    { code: 'XX000' },
  );

  it('is PrincipalNotValidated naming the three causes, retried with backoff, then Ready', async () => {
    let validated = false;
    const w = world({
      ensure: async () => {
        if (!validated) throw new PrincipalNotValidatedError('principal-1', cause);
        return {
          user: 'app',
          adoptedExisting: false,
          applied: { server: 'pg', role: 'app', database: 'shop', memberOf: ['readers'], grants: [] },
          missing: [],
        };
      },
    });
    const error = await failure(reconciler(w)('apps/a'));
    expect(retryAfterMsOf(error)).toBe(DATABASE_RETRY_MS);
    const roleReady = condition(w.statusWrites[0], 'DatabaseRoleReady');
    expect(roleReady).toMatchObject({ status: 'False', reason: Reason.PrincipalNotValidated });
    expect(roleReady?.message).toBe(
      principalNotValidatedMessage(new PrincipalNotValidatedError('principal-1', cause), 'tenant-1'),
    );
    for (const cause of [
      'not yet replicated to Microsoft Graph',
      'AzureActiveDirectory service tag',
      'graph.microsoft.com',
      "the identity's tenant is tenant-1",
      'Could not validate AAD user principal-1',
    ]) {
      expect(roleReady?.message).toContain(cause);
    }
    expect(w.statusWrites[0]?.applied).toBeUndefined();

    validated = true;
    w.access = accessWith(w.statusWrites[0]!);
    w.live = w.access;
    await reconciler(w)('apps/a');
    expect(condition(w.statusWrites[1], 'Ready')?.status).toBe('True');
  });
});
