// A PostgreSQL role shared by access resources (one role per principal on a server: every resource
// of one identity uses it). Changing or deleting one of them must leave what the others still ask
// for. Before the fix, a grant change on one revoked the privilege from the shared role while the
// other stayed Ready without it until its next resync (found by the reliability fault matrix).
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControllerComponent } from '../../src/controller/component.ts';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, pollUntil, uniqueName } from '../harness/context.ts';
import { makeTempDir, removeTempDir } from '../harness/processes.ts';
import {
  applyFleetAccess,
  createFleetWorld,
  deleteAccess,
  type FleetAccess,
  type FleetWorld,
  fleetProblems,
  patchFleetGrants,
  readAccess,
  startInProcessController,
  superuserQuery,
  waitForFleet,
  writeOperatorToken,
} from '../harness/scenario.ts';

const info = harnessInfo();

describe.skipIf(!info)('a role shared by two access resources', () => {
  const run = uniqueName('shr');
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let emulator: AzureEmulatorClient;
  let world: FleetWorld;
  let dir: string;
  let controller: ControllerComponent | undefined;
  let a: FleetAccess;
  let b: FleetAccess;

  const privileges = async (role: string, table: string) =>
    (
      await superuserQuery<{ p: string }>(
        info!,
        `SELECT p FROM unnest(ARRAY['SELECT','INSERT']) p WHERE has_table_privilege($1, 'public.' || $2, p) ORDER BY 1`,
        [role, table],
        world.database,
      )
    ).map((r) => r.p);

  beforeAll(async () => {
    kc = adminKubeConfig(info!);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    emulator = new AzureEmulatorClient(info!.azure.url, { ca: readFileSync(info!.caFile) });
    dir = makeTempDir('shared-role');
    world = await createFleetWorld(info!, kc, emulator, { run, namespaces: 1, identities: 1 });
    const identity = world.identities[0]!;
    const base = { namespace: world.namespaces[0]!, identity, role: `${world.database}_shared` };
    a = { ...base, name: 'a', serviceAccount: 'a', tables: { orders: ['SELECT', 'INSERT'] } };
    b = { ...base, name: 'b', serviceAccount: 'b', tables: { orders: ['SELECT'] } };
    controller = await startInProcessController(info!, kc, {
      tokenFile: await writeOperatorToken(info!, kc, dir),
      clusterName: run,
      // No resync during the test: B must keep its privilege without being reconciled again.
      args: ['--resync-period=3600'],
    });
  });

  afterAll(async () => {
    await controller?.stop();
    if (dir) removeTempDir(dir);
  });

  it('keeps what one resource asks for when the other drops it, and when the other is deleted', async () => {
    await applyFleetAccess(custom, world, a);
    await applyFleetAccess(custom, world, b);
    const check = (live: FleetAccess[]) => () => fleetProblems(info!, custom, emulator, world, { live });
    expect((await waitForFleet('shared role created', check([a, b]))).problems).toEqual([]);
    expect(await privileges(a.role, 'orders')).toEqual(['INSERT', 'SELECT']);

    // A now asks for items only: INSERT on orders goes (nobody asks for it), SELECT stays for B.
    a = { ...a, tables: { items: ['SELECT'] } };
    await patchFleetGrants(custom, a);
    await pollUntil(
      () => readAccess(custom, a.namespace, a.name),
      (access) => access?.status?.observedGeneration === 2,
      60_000,
    );
    expect(await privileges(a.role, 'orders')).toEqual(['SELECT']);
    expect(await privileges(a.role, 'items')).toEqual(['SELECT']);
    expect((await waitForFleet('shared role, one changed', check([a, b]))).problems).toEqual([]);

    // A deleted: its items privilege goes, B's SELECT on orders stays, the role stays for B.
    await deleteAccess(custom, a.namespace, a.name);
    await pollUntil(
      () => readAccess(custom, a.namespace, a.name),
      (access) => access === undefined,
      60_000,
    );
    expect(await privileges(b.role, 'orders')).toEqual(['SELECT']);
    expect((await waitForFleet('shared role, one deleted', check([b]))).problems).toEqual([]);
    await deleteAccess(custom, b.namespace, b.name);
    expect((await waitForFleet('shared role, both deleted', check([]))).problems).toEqual([]);
  });
});
