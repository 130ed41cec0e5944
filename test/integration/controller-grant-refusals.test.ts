// The controller on what the database refuses it (issue 13 §2), against every real part:
// - a grant the admin may not give that PostgreSQL "grants" with WARNING 01007 ("no privileges
//   were granted"), and one it refuses with 42501: DatabaseRoleReady False GrantNotPermitted
//   naming the table and its owner, never Ready; status.applied records what is in force, and
//   the app has exactly that; once the owner lets the admin grant, both become Ready;
// - an identity pgaadauth_create_principal_with_oid cannot validate (Azure's XX000 while a new
//   identity replicates, the stand-in told to refuse it): PrincipalNotValidated, retried with
//   backoff, and Ready once the stand-in stops refusing.
// Objects of the harness superuser stand for Azure's restricted azuresu (pgaadauth-standins.sql).
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reason } from '../../src/api/constants.ts';
import type { EntraDatabaseAccess } from '../../src/api/types.ts';
import type { ControllerComponent } from '../../src/controller/component.ts';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  appToken,
  conditionOf,
  createAccess,
  createFleetWorld,
  deleteAccessAndWait,
  deleteAccessesAndWait,
  type FleetWorld,
  isReady,
  loginAndQuery,
  readAccess,
  readGrants,
  rolesOfPrincipal,
  startInProcessController,
  superuserQuery,
  writeOperatorToken,
} from '../harness/scenario.ts';

const info = harnessInfo();

describe.skipIf(!info)(
  'the controller on grants the server refuses and principals it cannot validate',
  () => {
    const run = uniqueName('rfs');
    let kc: k8s.KubeConfig;
    let custom: k8s.CustomObjectsApi;
    let emulator: AzureEmulatorClient;
    let world: FleetWorld;
    let dir: string;
    let controller: ControllerComponent | undefined;
    let superuserRole: string;
    let adminRole: string;

    const su = <T extends Record<string, unknown>>(
      sql: string,
      params: unknown[] = [],
      db = world.database,
    ) => superuserQuery<T>(info!, sql, params, db);
    const namespace = () => world.namespaces[0]!;
    const read = (name: string) => readAccess(custom, namespace(), name);
    const roleReady = (access: EntraDatabaseAccess | undefined) => conditionOf(access, 'DatabaseRoleReady');
    const waitFor = (
      name: string,
      done: (a: EntraDatabaseAccess | undefined) => boolean,
      timeoutMs = 60_000,
    ) => pollUntil(() => read(name), done, timeoutMs, 250);
    const refusedWith = (reason: string) => (access: EntraDatabaseAccess | undefined) =>
      roleReady(access)?.reason === reason &&
      access?.status?.observedGeneration === access?.metadata.generation;

    /** The app of `access` logs in with its own token and runs `sql`. */
    const asApp = async (access: string, identity: number, role: string, sql: string) =>
      loginAndQuery(
        info!,
        {
          database: world.database,
          role,
          token: await appToken(info!, kc, {
            namespace: namespace(),
            serviceAccount: access,
            clientId: world.identities[identity]!.clientId,
          }),
        },
        sql,
      );

    beforeAll(async () => {
      kc = adminKubeConfig(info!);
      custom = kc.makeApiClient(k8s.CustomObjectsApi);
      emulator = new AzureEmulatorClient(info!.azure.url, { ca: readFileSync(info!.caFile) });
      dir = makeTempDir('grant-refusals');
      adminRole = info!.azure.operator.postgresAdminRole;
      world = await createFleetWorld(info!, kc, emulator, { run, namespaces: 1, identities: 3 });
      superuserRole = (await su<{ me: string }>('SELECT current_user AS me'))[0]!.me;
      // Tables of the harness superuser (azuresu's stand-in): out of the admin's reach. On audit the
      // admin holds SELECT without grant option, so a GRANT of it "succeeds" with a warning.
      await su(`CREATE TABLE public.ledger (id int); CREATE TABLE public.audit (id int);
      INSERT INTO public.ledger VALUES (1); INSERT INTO public.audit VALUES (2);
      GRANT SELECT ON public.audit TO "${adminRole}";`);
      controller = await startInProcessController(info!, kc, {
        tokenFile: await writeOperatorToken(info!, kc, dir),
        clusterName: run,
        args: ['--resync-period=3600'],
      });
    });

    afterAll(async () => {
      if (world) {
        await su(
          'DELETE FROM pgaadauth_standin.validation_faults WHERE object_id = ANY($1)',
          [world.identities.map((i) => i.principalId)],
          'postgres',
        ).catch(() => {});
        for (const ns of world.namespaces) await deleteAccessesAndWait(custom, ns);
      }
      await controller?.stop();
      if (dir) removeTempDir(dir);
    });

    it('is not Ready on a grant that only warned (01007) or was denied (42501); records and gives what is in force; Ready once permitted', async () => {
      const warned = `${world.database}_warned`;
      const denied = `${world.database}_denied`;
      await createAccess(custom, namespace(), 'warned', {
        serviceAccountName: 'warned',
        identity: world.identities[0]!.id,
        serverRef: world.server,
        database: world.database,
        roleName: warned,
        grants: readGrants('orders', 'audit'),
      });
      await createAccess(custom, namespace(), 'denied', {
        serviceAccountName: 'denied',
        identity: world.identities[1]!.id,
        serverRef: world.server,
        database: world.database,
        roleName: denied,
        grants: readGrants('items', 'ledger'),
      });

      const first = await waitFor('warned', refusedWith(Reason.GrantNotPermitted));
      expect(conditionOf(first)).toMatchObject({ status: 'False', reason: Reason.GrantNotPermitted });
      expect(roleReady(first)?.message).toContain(
        `SELECT on table "public"."audit" in database "${world.database}" (owner "${superuserRole}"): no privileges were granted for "audit"`,
      );
      expect(first?.status?.applied?.grants).toEqual([
        { target: 'database', privileges: ['CONNECT'] },
        { target: 'schema', schema: 'public', privileges: ['USAGE'] },
        { target: 'tables', schema: 'public', tables: ['orders'], privileges: ['SELECT'] },
      ]);
      const second = await waitFor('denied', refusedWith(Reason.GrantNotPermitted));
      expect(roleReady(second)?.message).toContain(
        `SELECT on table "public"."ledger" in database "${world.database}" (owner "${superuserRole}"): permission denied for table ledger`,
      );
      expect(roleReady(second)?.message).toContain(`"${adminRole}" is a member of azure_pg_admin`);
      expect(second?.status?.applied?.grants).toEqual([
        { target: 'database', privileges: ['CONNECT'] },
        { target: 'schema', schema: 'public', privileges: ['USAGE'] },
        { target: 'tables', schema: 'public', tables: ['items'], privileges: ['SELECT'] },
      ]);
      // The apps have what is in force, and no more.
      expect(await asApp('warned', 0, warned, 'SELECT count(*)::int AS n FROM orders')).toBe('[{"n":0}]');
      expect(await asApp('warned', 0, warned, 'SELECT * FROM audit')).toMatch(/^ERROR: permission denied/);
      expect(await asApp('denied', 1, denied, 'SELECT count(*)::int AS n FROM items')).toBe('[{"n":0}]');
      expect(await asApp('denied', 1, denied, 'SELECT * FROM ledger')).toMatch(/^ERROR: permission denied/);

      // The owner lets the admin grant them: the retries (with backoff) get there without a touch.
      await su(`GRANT SELECT ON public.audit, public.ledger TO "${adminRole}" WITH GRANT OPTION`);
      for (const name of ['warned', 'denied']) {
        const ready = await waitFor(name, isReady);
        expect(conditionOf(ready)).toMatchObject({ status: 'True' });
      }
      expect(await asApp('warned', 0, warned, 'SELECT id FROM audit')).toBe('[{"id":2}]');
      expect(await asApp('denied', 1, denied, 'SELECT id FROM ledger')).toBe('[{"id":1}]');
      expect((await read('denied'))?.status?.applied?.grants).toContainEqual({
        target: 'tables',
        schema: 'public',
        tables: ['items', 'ledger'],
        privileges: ['SELECT'],
      });

      // Deleted: what is in force is revoked and the roles dropped.
      for (const name of ['warned', 'denied'])
        expect(await deleteAccessAndWait(custom, namespace(), name)).toBe(undefined);
      expect(await su('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [[warned, denied]])).toEqual(
        [],
      );
    });

    it('retries a principal pgaadauth cannot validate (XX000) as PrincipalNotValidated, and is Ready once it validates', async () => {
      const identity = world.identities[2]!;
      const role = `${world.database}_late`;
      const refusals = async () =>
        Number(
          (
            await su<{ n: string }>(
              'SELECT last_value - CASE WHEN is_called THEN 0 ELSE 1 END AS n FROM pgaadauth_standin.validation_refusals',
              [],
              'postgres',
            )
          )[0]!.n,
        );
      // Just created, not replicated yet: the stand-in refuses it as Azure would.
      await su(
        'INSERT INTO pgaadauth_standin.validation_faults (object_id, mode) VALUES ($1, $2)',
        [identity.principalId, 'not_found'],
        'postgres',
      );
      const before = await refusals();
      await createAccess(custom, namespace(), 'late', {
        serviceAccountName: 'late',
        identity: identity.id,
        serverRef: world.server,
        database: world.database,
        roleName: role,
        grants: readGrants('orders'),
      });
      const refused = await waitFor('late', refusedWith(Reason.PrincipalNotValidated));
      expect(conditionOf(refused)).toMatchObject({ status: 'False', reason: Reason.PrincipalNotValidated });
      const message = roleReady(refused)?.message ?? '';
      expect(message).toContain(`Could not validate AAD user ${identity.principalId}`);
      expect(message).toContain('not yet replicated to Microsoft Graph');
      expect(message).toContain('AzureActiveDirectory service tag');
      expect(message).toContain('graph.microsoft.com');
      expect(message).toContain('tenant');
      expect(await rolesOfPrincipal(info!, identity.principalId)).toEqual([]);
      // It keeps trying, with backoff.
      await pollUntil(refusals, (n) => n >= before + 2, 30_000, 250);

      // Replicated: the next retry creates the role and the resource becomes Ready.
      await su(
        'DELETE FROM pgaadauth_standin.validation_faults WHERE object_id = $1',
        [identity.principalId],
        'postgres',
      );
      const ready = await waitFor('late', isReady);
      expect(conditionOf(ready)).toMatchObject({ status: 'True' });
      expect(await rolesOfPrincipal(info!, identity.principalId)).toEqual([role]);
      expect(await asApp('late', 2, role, 'SELECT count(*)::int AS n FROM orders')).toBe('[{"n":0}]');
      expect(await deleteAccessAndWait(custom, namespace(), 'late')).toBe(undefined);
    });
  },
);
