// The whole chain the product relies on, with every real part: a service-account token from
// the real apiserver, exchanged by the real @azure/identity at the Azure emulator (which verifies
// it against the apiserver's JWKS and the FICs the operator wrote through the real ARM SDK), and
// a real PostgreSQL login with the resulting Entra token as the password.

import { readFileSync } from 'node:fs';
import type { TokenCredential } from '@azure/identity';
import * as k8s from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureEmulatorClient } from '../harness/azure-emulator/client.ts';
import { adminKubeConfig, harnessInfo, uniqueName } from '../harness/context.ts';
import {
  ARM_SCOPE,
  ENTRA_AUDIENCE,
  managedIdentityClient,
  operatorCredential,
  POSTGRES_SCOPE,
  serviceAccountToken,
  workloadIdentityCredential,
} from '../harness/workload-identity.ts';

const harness = harnessInfo();

async function connect(user: string, password: string | (() => Promise<string>)): Promise<pg.Client> {
  const client = new pg.Client({
    host: harness!.postgres.host,
    port: harness!.postgres.port,
    database: 'postgres',
    user,
    password,
    ssl: { ca: readFileSync(harness!.caFile, 'utf8') },
  });
  await client.connect();
  return client;
}

async function loginFails(user: string, password: string): Promise<string> {
  try {
    const client = await connect(user, password);
    await client.end();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`login as ${user} unexpectedly succeeded`);
}

describe.skipIf(!harness)('workload identity to Azure and PostgreSQL through the harness', () => {
  const namespace = uniqueName('wi');
  const subscriptionId = '00000000-0000-0000-0000-00000000a001';
  const resourceGroup = uniqueName('rg');
  const roleName = uniqueName('orders-api');
  let kc: k8s.KubeConfig;
  let emulator: AzureEmulatorClient;
  let operator: TokenCredential;
  let app: { id: string; clientId: string; principalId: string };
  let superuser: pg.Client;

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    emulator = new AzureEmulatorClient(harness!.azure.url, { ca: readFileSync(harness!.caFile) });
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    for (const name of ['orders-api', 'intruder']) {
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    }
    operator = await operatorCredential(harness!, kc);
    app = await emulator.createIdentity({ subscriptionId, resourceGroup, name: 'orders-api' });
    superuser = new pg.Client({ connectionString: harness!.postgres.superuserUrl });
    await superuser.connect();
  });

  /** node-postgres' password callback, as the app would pass it: a fresh Entra token per connection. */
  async function appPassword(): Promise<() => Promise<string>> {
    const sa = await serviceAccountToken(kc, namespace, 'orders-api');
    const credential = await workloadIdentityCredential(harness!, app.clientId, sa);
    return async () => (await credential.getToken(POSTGRES_SCOPE))!.token;
  }

  afterAll(async () => {
    await superuser?.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(roleName)}`).catch(() => {});
    await superuser?.end();
    await kc
      ?.makeApiClient(k8s.CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => {});
  });

  it('gives the operator an ARM token by workload identity, and ARM answers with the identity', async () => {
    const token = await operator.getToken(ARM_SCOPE);
    expect(token?.token).toBeTruthy();
    expect(decodeJwt(token!.token).oid).toBe(harness!.azure.operator.principalId);

    const msi = managedIdentityClient(harness!, operator, subscriptionId);
    const identity = await msi.userAssignedIdentities.get(resourceGroup, 'orders-api');
    expect(identity).toMatchObject({
      clientId: app.clientId,
      principalId: app.principalId,
      tenantId: harness!.azure.tenantId,
    });
  });

  it('lets an app exchange its service-account token once the operator has written its FIC', async () => {
    const msi = managedIdentityClient(harness!, operator, subscriptionId);
    await msi.federatedIdentityCredentials.createOrUpdate(resourceGroup, 'orders-api', 'harness-orders-api', {
      issuer: harness!.kubernetes.issuer,
      subject: `system:serviceaccount:${namespace}:orders-api`,
      audiences: [ENTRA_AUDIENCE],
    });
    const credential = await workloadIdentityCredential(
      harness!,
      app.clientId,
      await serviceAccountToken(kc, namespace, 'orders-api'),
    );
    const token = await credential.getToken(ARM_SCOPE);
    const claims = decodeJwt(token!.token);
    expect(claims.oid).toBe(app.principalId);
    expect(claims.tid).toBe(harness!.azure.tenantId);
    expect(claims.exp).toBeGreaterThan(Date.now() / 1000);
  });

  it('refuses a token of a service account that no FIC names (AADSTS70021)', async () => {
    const credential = await workloadIdentityCredential(
      harness!,
      app.clientId,
      await serviceAccountToken(kc, namespace, 'intruder'),
    );
    await expect(credential.getToken(ARM_SCOPE)).rejects.toThrow(/AADSTS70021/);
  });

  it('refuses a service-account token issued for another audience (AADSTS70021)', async () => {
    const credential = await workloadIdentityCredential(
      harness!,
      app.clientId,
      await serviceAccountToken(kc, namespace, 'orders-api', 'https://kubernetes.default.svc'),
    );
    await expect(credential.getToken(ARM_SCOPE)).rejects.toThrow(/AADSTS70021/);
  });

  it('lets the operator, as Entra admin, log in to PostgreSQL with a token and create the principal', async () => {
    const adminRole = harness!.azure.operator.postgresAdminRole;
    const admin = await connect(adminRole, async () => (await operator.getToken(POSTGRES_SCOPE))!.token);
    try {
      const admins = await admin.query('SELECT rolname FROM pgaadauth_list_principals(true)');
      expect(admins.rows.map((r) => r.rolname)).toContain(adminRole);
      await admin.query("SELECT pgaadauth_create_principal_with_oid($1, $2, 'service', false, false)", [
        roleName,
        app.principalId,
      ]);
      const all = await admin.query('SELECT * FROM pgaadauth_list_principals(false) WHERE rolname = $1', [
        roleName,
      ]);
      expect(all.rows).toEqual([
        {
          rolname: roleName,
          principalType: 'service',
          objectId: app.principalId,
          tenantId: harness!.azure.tenantId,
          isMfa: false,
          isAdmin: false,
        },
      ]);
    } finally {
      await admin.end();
    }
  });

  it('logs the app in with its Entra token as the password, and refuses wrong tokens', async () => {
    const client = await connect(roleName, await appPassword());
    const { rows } = await client.query('SELECT current_user AS me');
    expect(rows[0].me).toBe(roleName);
    await client.end();

    expect(await loginFails(roleName, 'not-a-token')).toMatch(/password authentication failed/);
    // A valid Entra token of another principal is not this role's password either.
    const operatorToken = (await operator.getToken(POSTGRES_SCOPE))!.token;
    expect(await loginFails(roleName, operatorToken)).toMatch(/password authentication failed/);
  });

  it('refuses an app principal that is not an Entra admin when it tries to create principals', async () => {
    const client = await connect(roleName, await appPassword());
    try {
      await expect(
        client.query("SELECT pgaadauth_create_principal_with_oid('sneaky', 'x', 'service', true, false)"),
      ).rejects.toThrow(/only a Microsoft Entra administrator/);
    } finally {
      await client.end();
    }
  });

  it('refuses a revoked token and accepts the next one issued', async () => {
    const sa = await serviceAccountToken(kc, namespace, 'orders-api');
    const first = (await (
      await workloadIdentityCredential(harness!, app.clientId, sa)
    ).getToken(POSTGRES_SCOPE))!.token;
    await emulator.revoke(app.principalId);
    expect(await loginFails(roleName, first)).toMatch(/password authentication failed/);
    const second = (await (
      await workloadIdentityCredential(harness!, app.clientId, sa)
    ).getToken(POSTGRES_SCOPE))!.token;
    const client = await connect(roleName, second);
    await client.end();
  });

  it('refuses an expired token', async () => {
    const sa = await serviceAccountToken(kc, namespace, 'orders-api');
    await emulator.setConfig({ tokenLifetimeSecondsByClientId: { [app.clientId]: 1 } });
    try {
      const credential = await workloadIdentityCredential(harness!, app.clientId, sa);
      const token = (await credential.getToken(POSTGRES_SCOPE))!.token;
      await new Promise((resolve) => setTimeout(resolve, 2100));
      expect(await loginFails(roleName, token)).toMatch(/password authentication failed/);
    } finally {
      await emulator.setConfig({ tokenLifetimeSecondsByClientId: {} });
    }
  });
});
