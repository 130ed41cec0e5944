// The Azure emulator's role assignments and Blob data plane against the real SDKs:
// @azure/arm-authorization's AuthorizationManagementClient (api-version 2022-04-01) for
// Microsoft.Authorization, and @azure/storage-blob with a WorkloadIdentityCredential whose token
// comes from the emulator's Entra endpoint for https://storage.azure.com/.default. Self-contained,
// like azure-emulator-arm.test.ts: its own CA, emulator process and OIDC issuer.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ClientAssertionCredential, type TokenCredential, WorkloadIdentityCredential } from '@azure/identity';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ARM_REQUEST_LIMITS,
  type IdentityView,
  ROLE_IDS,
  type RuntimeSettings,
} from '../harness/azure-emulator/client.ts';
import { type FakeOidcIssuer, startFakeOidcIssuer } from '../harness/azure-emulator/fake-oidc-issuer.ts';
import { type AzureEmulator, startAzureEmulator } from '../harness/azure-emulator/launch.ts';
import { trustingPipelineOptions } from '../harness/azure-emulator/trusting-http-client.ts';
import { createCertificateAuthority, issueCertificate } from '../harness/pki.ts';
import { makeTempDir, removeTempDir } from '../harness/processes.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SUBSCRIPTION = '00000000-0000-4000-8000-0000000000a1';
const RG = 'rg-data';
const OTHER_RG = 'rg-other';
const ACCOUNT = 'stdatasets';
const CONTAINER = 'datasets';
const ARM_SCOPE = 'https://management.azure.com/.default';
const STORAGE_SCOPE = 'https://storage.azure.com/.default';
const EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';
const CONTROLLER_SUBJECT = 'system:serviceaccount:entra-access:controller';
const APP_SUBJECT = 'system:serviceaccount:pipeline:reader';

const SUB_SCOPE = `/subscriptions/${SUBSCRIPTION}`;
const RG_SCOPE = `${SUB_SCOPE}/resourceGroups/${RG}`;
const ACCOUNT_SCOPE = `${RG_SCOPE}/providers/Microsoft.Storage/storageAccounts/${ACCOUNT}`;
const CONTAINER_SCOPE = `${ACCOUNT_SCOPE}/blobServices/default/containers/${CONTAINER}`;
const roleId = (guid: string) => `${SUB_SCOPE}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;

/** Constrained delegation as Microsoft documents it: only the two blob data roles, to assign and to remove. */
const BLOB_ROLES_ONLY =
  "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR " +
  `(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${ROLE_IDS.storageBlobDataReader}, ${ROLE_IDS.storageBlobDataContributor}})) AND ` +
  "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR " +
  `(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${ROLE_IDS.storageBlobDataReader}, ${ROLE_IDS.storageBlobDataContributor}}))`;

let dir: string;
let emulator: AzureEmulator;
let issuer: FakeOidcIssuer;
let agent: Agent;
let trust: ReturnType<typeof trustingPipelineOptions>;
let controller: IdentityView;
let controllerCredential: ClientAssertionCredential;
let authz: AuthorizationManagementClient;
let app: IdentityView;
let appEnv: Record<string, string>;
let startSettings: RuntimeSettings;
let names = 0;

function authorizationClient(credential: TokenCredential, maxRetries = 0): AuthorizationManagementClient {
  return new AuthorizationManagementClient(credential, SUBSCRIPTION, {
    endpoint: emulator.url,
    credentialScopes: [ARM_SCOPE],
    retryOptions: { maxRetries, retryDelayInMs: 20, maxRetryDelayInMs: 100 },
    ...trust,
  });
}

/** The app's credential as a pod gets it: the env the webhook injects, read the way the SDK reads it. */
function podCredential(env: Record<string, string>): WorkloadIdentityCredential {
  return new WorkloadIdentityCredential({
    tenantId: env.AZURE_TENANT_ID!,
    clientId: env.AZURE_CLIENT_ID!,
    tokenFilePath: env.AZURE_FEDERATED_TOKEN_FILE!,
    authorityHost: env.AZURE_AUTHORITY_HOST!,
    disableInstanceDiscovery: true,
    ...trust,
  });
}

function blobService(credential: TokenCredential): BlobServiceClient {
  return new BlobServiceClient(`${emulator.blobUrl}/${ACCOUNT}`, credential, {
    retryOptions: { maxTries: 1 },
    ...trust,
  });
}

/** Get Blob (the SDK's download), the call an app makes to read. */
async function readBlob(credential: TokenCredential, name = 'state.json'): Promise<string> {
  const response = await blobService(credential).getContainerClient(CONTAINER).getBlobClient(name).download();
  const chunks: Buffer[] = [];
  for await (const chunk of response.readableStreamBody!) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface SdkError {
  statusCode?: number;
  /** From the error body; HEAD answers have none, their code is in details.errorCode. */
  code?: string;
  message: string;
  details?: { errorCode?: string };
  response?: { headers: { get(name: string): string | undefined } };
}

/** The error an SDK call rejects with (RestError). */
async function failure(promise: Promise<unknown>): Promise<SdkError> {
  try {
    await promise;
  } catch (error) {
    return error as SdkError;
  }
  throw new Error('expected the call to fail');
}

function newName(): string {
  names++;
  return randomUUID();
}

async function newIdentity(prefix: string): Promise<IdentityView> {
  return emulator.client.createIdentity({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: RG,
    name: `${prefix}-${++names}`,
  });
}

/** A plain HTTPS call to the Blob endpoint, for what the SDK hides (headers, exact bodies). */
function rawBlob(path: string, headers: Record<string, string>) {
  return new Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }>((resolve, reject) => {
    const req = request(new URL(path, emulator.blobUrl), { method: 'GET', headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function assign(scope: string, role: string, principalId: string, principalType?: string) {
  const name = newName();
  const statuses: number[] = [];
  const created = await authz.roleAssignments.create(
    scope,
    name,
    { roleDefinitionId: roleId(role), principalId, ...(principalType ? { principalType } : {}) },
    { onResponse: (r) => statuses.push(r.status) },
  );
  return { name, created, status: statuses.at(-1) };
}

beforeAll(async () => {
  dir = makeTempDir('azure-emulator-authorization');
  const ca = await createCertificateAuthority('entra-access azure-emulator authorization test CA');
  const leaf = await issueCertificate(ca, {
    commonName: 'azure-emulator',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    usage: 'server',
  });
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem, { mode: 0o600 });
  agent = new Agent({ ca: ca.certPem });
  trust = trustingPipelineOptions(ca.certPem);
  [emulator, issuer] = await Promise.all([
    startAzureEmulator({
      dir,
      caFile: join(dir, 'ca.crt'),
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      tenantId: TENANT,
    }),
    startFakeOidcIssuer(leaf),
  ]);
  startSettings = await emulator.client.getConfig();

  // The operator's identity and FIC, made out of band by the platform team.
  controller = await emulator.client.createIdentity({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: RG,
    name: 'ctl',
  });
  await emulator.client.putFederatedCredential(controller.id, 'controller', {
    issuer: issuer.issuer,
    subject: CONTROLLER_SUBJECT,
    audiences: [EXCHANGE_AUDIENCE],
  });
  controllerCredential = new ClientAssertionCredential(
    TENANT,
    controller.clientId,
    () => issuer.mint({ subject: CONTROLLER_SUBJECT, audience: EXCHANGE_AUDIENCE }),
    { authorityHost: emulator.url, disableInstanceDiscovery: true, ...trust },
  );
  authz = authorizationClient(controllerCredential);

  // The app's identity, FIC and projected token, as a labelled pod has them.
  app = await emulator.client.createIdentity({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: RG,
    name: 'pipeline',
  });
  await emulator.client.putFederatedCredential(app.id, 'pipeline-reader', {
    issuer: issuer.issuer,
    subject: APP_SUBJECT,
    audiences: [EXCHANGE_AUDIENCE],
  });
  const tokenFile = join(dir, 'azure-identity-token');
  writeFileSync(tokenFile, await issuer.mint({ subject: APP_SUBJECT, audience: EXCHANGE_AUDIENCE }));
  appEnv = {
    AZURE_CLIENT_ID: app.clientId,
    AZURE_TENANT_ID: TENANT,
    AZURE_FEDERATED_TOKEN_FILE: tokenFile,
    AZURE_AUTHORITY_HOST: emulator.url,
  };

  await emulator.client.createStorageAccount({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: RG,
    name: ACCOUNT,
    containers: [CONTAINER, 'other'],
  });
  await emulator.client.putBlob({
    account: ACCOUNT,
    container: CONTAINER,
    name: 'state.json',
    content: '{"run":1}',
  });
});

afterAll(async () => {
  await emulator?.stop();
  await issuer?.close();
  agent?.destroy();
  if (dir) removeTempDir(dir);
});

beforeEach(async () => {
  await emulator.client.clearFaults();
  await emulator.client.setConfig({
    principalReplicationSeconds: startSettings.principalReplicationSeconds,
    principalReplicationSecondsWithType: 0,
    roleAssignmentPropagationSeconds: 0,
    roleAssignmentsPerSubscription: 4000,
    authorizationRateLimits: ARM_REQUEST_LIMITS,
  });
  // Each test starts from the operator's own rights only.
  for (const a of await emulator.client.listRoleAssignments()) {
    if (a.properties.principalId !== controller.principalId) {
      await emulator.client.removeRoleAssignment(a.properties.scope, a.name);
    }
  }
});

describe('emulator defaults', () => {
  it("start with ARM's request limits, the 4,000 limit and a 30 s replication delay for PUTs without principalType", () => {
    expect(startSettings).toMatchObject({
      authorizationRateLimits: ARM_REQUEST_LIMITS,
      roleAssignmentsPerSubscription: 4000,
      principalReplicationSeconds: 30,
      principalReplicationSecondsWithType: 0,
      roleAssignmentPropagationSeconds: 0,
    });
  });
});

describe('role definitions', () => {
  it('finds built-in roles by name and by ID, as the product looks them up', async () => {
    const found = [];
    for await (const d of authz.roleDefinitions.list(SUB_SCOPE, {
      filter: "roleName eq 'Storage Blob Data Reader'",
    })) {
      found.push(d);
    }
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      id: roleId(ROLE_IDS.storageBlobDataReader),
      name: ROLE_IDS.storageBlobDataReader,
      roleName: 'Storage Blob Data Reader',
      roleType: 'BuiltInRole',
      permissions: [
        { dataActions: ['Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'] },
      ],
    });
    const owner = await authz.roleDefinitions.get(SUB_SCOPE, ROLE_IDS.owner);
    expect(owner.roleName).toBe('Owner');
    const byId = await authz.roleDefinitions.getById(
      `/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS.keyVaultSecretsUser}`,
    );
    expect(byId.roleName).toBe('Key Vault Secrets User');
    const missing = await failure(
      authz.roleDefinitions.get(SUB_SCOPE, '00000000-0000-4000-8000-000000000000'),
    );
    expect(missing.statusCode).toBe(404);
  });
});

describe('role assignments', () => {
  it('needs the caller to hold roleAssignments/write at or above the scope: 403 AuthorizationFailed', async () => {
    const name = newName();
    const error = await failure(
      authz.roleAssignments.create(CONTAINER_SCOPE, name, {
        roleDefinitionId: roleId(ROLE_IDS.storageBlobDataReader),
        principalId: app.principalId,
        principalType: 'ServicePrincipal',
      }),
    );
    expect(error.statusCode).toBe(403);
    expect(error.code).toBe('AuthorizationFailed');
    expect(error.message).toBe(
      `The client '${controller.clientId}' with object id '${controller.principalId}' does not have authorization or ` +
        "an ABAC condition not fulfilled to perform action 'Microsoft.Authorization/roleAssignments/write' over scope " +
        `'${CONTAINER_SCOPE}/providers/Microsoft.Authorization/roleAssignments/${name}' or the scope is invalid. If ` +
        'access was recently granted, please refresh your credentials.',
    );
  });

  describe('with the operator as Role Based Access Control Administrator on the resource group, constrained to the blob roles', () => {
    beforeAll(async () => {
      await emulator.client.seedRoleAssignment({
        scope: RG_SCOPE,
        roleName: 'Role Based Access Control Administrator',
        principalId: controller.principalId,
        principalType: 'ServicePrincipal',
        condition: BLOB_ROLES_ONLY,
        conditionVersion: '2.0',
      });
    });

    it('creates, reads, lists at scope and deletes, with the SDK scope spelled either way', async () => {
      const { name, created, status } = await assign(
        CONTAINER_SCOPE,
        ROLE_IDS.storageBlobDataReader,
        app.principalId,
        'ServicePrincipal',
      );
      expect(status).toBe(201);
      expect(created).toMatchObject({
        id: `${CONTAINER_SCOPE}/providers/Microsoft.Authorization/roleAssignments/${name}`,
        name,
        type: 'Microsoft.Authorization/roleAssignments',
        scope: CONTAINER_SCOPE,
        roleDefinitionId: roleId(ROLE_IDS.storageBlobDataReader),
        principalId: app.principalId,
        principalType: 'ServicePrincipal',
        createdBy: controller.principalId,
      });
      expect(created.createdOn).toBeInstanceOf(Date);

      // Without the leading slash the SDK sends a single one; with it, `//subscriptions/…`.
      const got = await authz.roleAssignments.get(CONTAINER_SCOPE.slice(1), name.toUpperCase());
      expect(got.id).toBe(created.id);

      const list = async (scope: string, filter?: string) => {
        const ids = [];
        for await (const a of authz.roleAssignments.listForScope(scope, filter ? { filter } : {}))
          ids.push(a.name);
        return ids;
      };
      expect(await list(ACCOUNT_SCOPE)).toContain(name);
      expect(await list(ACCOUNT_SCOPE, 'atScope()')).not.toContain(name);
      expect(await list(CONTAINER_SCOPE, 'atScope()')).toContain(name);
      expect(await list(RG_SCOPE, `principalId eq '${app.principalId}'`)).toEqual([name]);
      expect(await list(RG_SCOPE, `principalId eq '${controller.principalId}'`)).not.toContain(name);

      // The same PUT again is an idempotent update.
      const again = await assign(
        CONTAINER_SCOPE,
        ROLE_IDS.storageBlobDataReader,
        app.principalId,
        'ServicePrincipal',
      ).catch((e: { code?: string }) => e);
      expect(again).toMatchObject({ code: 'RoleAssignmentExists' });
      const statuses: number[] = [];
      await authz.roleAssignments.create(
        CONTAINER_SCOPE,
        name,
        {
          roleDefinitionId: roleId(ROLE_IDS.storageBlobDataReader),
          principalId: app.principalId,
          principalType: 'ServicePrincipal',
        },
        { onResponse: (r) => statuses.push(r.status) },
      );
      expect(statuses).toEqual([200]);

      const deleteStatuses: number[] = [];
      const onResponse = (r: { status: number }) => deleteStatuses.push(r.status);
      const removed = await authz.roleAssignments.delete(CONTAINER_SCOPE, name, { onResponse });
      expect(removed.id).toBe(created.id);
      await authz.roleAssignments.delete(CONTAINER_SCOPE, name, { onResponse });
      expect(deleteStatuses).toEqual([200, 204]);
      const gone = await failure(authz.roleAssignments.get(CONTAINER_SCOPE, name));
      expect([gone.statusCode, gone.code]).toEqual([404, 'RoleAssignmentNotFound']);
    });

    it('answers 409 RoleAssignmentExists for the same principal, role and scope under another name', async () => {
      const first = await assign(
        CONTAINER_SCOPE,
        ROLE_IDS.storageBlobDataReader,
        app.principalId,
        'ServicePrincipal',
      );
      const error = await failure(
        assign(CONTAINER_SCOPE, ROLE_IDS.storageBlobDataReader, app.principalId, 'ServicePrincipal'),
      );
      expect(error.statusCode).toBe(409);
      expect(error.code).toBe('RoleAssignmentExists');
      expect(error.message).toBe(
        `The role assignment already exists. The ID of the existing role assignment is ${first.name.replace(/-/g, '')}.`,
      );
    });

    it('refuses roles outside the condition and scopes outside the grant with AuthorizationFailed', async () => {
      for (const [scope, role] of [
        [CONTAINER_SCOPE, ROLE_IDS.owner],
        [CONTAINER_SCOPE, ROLE_IDS.userAccessAdministrator],
        [`${SUB_SCOPE}/resourceGroups/${OTHER_RG}`, ROLE_IDS.storageBlobDataReader],
        [`${RG_SCOPE}x`, ROLE_IDS.storageBlobDataReader],
        [SUB_SCOPE, ROLE_IDS.storageBlobDataReader],
      ] as const) {
        const error = await failure(assign(scope, role, app.principalId, 'ServicePrincipal'));
        expect([scope, error.statusCode, error.code]).toEqual([scope, 403, 'AuthorizationFailed']);
      }
    });

    it('answers PrincipalNotFound right after an identity is made, unless principalType is set', async () => {
      const fresh = await newIdentity('fresh');
      const error = await failure(assign(CONTAINER_SCOPE, ROLE_IDS.storageBlobDataReader, fresh.principalId));
      expect(error.statusCode).toBe(400);
      expect(error.code).toBe('PrincipalNotFound');
      expect(error.message).toContain(
        `Principal ${fresh.principalId.replace(/-/g, '')} does not exist in the directory ${TENANT}.`,
      );
      const made = await assign(
        CONTAINER_SCOPE,
        ROLE_IDS.storageBlobDataReader,
        fresh.principalId,
        'ServicePrincipal',
      );
      expect(made.status).toBe(201);

      // The knob for the rarer case where principalType does not help.
      await emulator.client.setConfig({ principalReplicationSecondsWithType: 60 });
      const other = await newIdentity('fresh');
      const stillMissing = await failure(
        assign(CONTAINER_SCOPE, ROLE_IDS.storageBlobDataReader, other.principalId, 'ServicePrincipal'),
      );
      expect(stillMissing.code).toBe('PrincipalNotFound');
      // A principal that does not exist at all is never found.
      const ghost = await failure(
        assign(CONTAINER_SCOPE, ROLE_IDS.storageBlobDataReader, randomUUID(), 'ServicePrincipal'),
      );
      expect(ghost.code).toBe('PrincipalNotFound');
    });

    it('refuses a name that is not a GUID, an unknown role and a principal type that does not match', async () => {
      const body = {
        roleDefinitionId: roleId(ROLE_IDS.storageBlobDataReader),
        principalId: app.principalId,
        principalType: 'ServicePrincipal',
      };
      const badName = await failure(
        authz.roleAssignments.create(CONTAINER_SCOPE, 'reader-of-datasets', body),
      );
      expect([badName.statusCode, badName.code]).toEqual([400, 'InvalidRoleAssignmentId']);
      const unknown = await failure(
        authz.roleAssignments.create(CONTAINER_SCOPE, newName(), {
          ...body,
          roleDefinitionId: roleId(randomUUID()),
        }),
      );
      // The condition names the role, so an unknown one is refused before the role is looked up.
      expect([unknown.statusCode, unknown.code]).toEqual([403, 'AuthorizationFailed']);
      const user = await failure(
        authz.roleAssignments.create(CONTAINER_SCOPE, newName(), { ...body, principalType: 'User' }),
      );
      expect([user.statusCode, user.code]).toEqual([400, 'UnmatchedPrincipalType']);
    });

    it('stops at the subscription limit with RoleAssignmentLimitExceeded', async () => {
      const existing = (await emulator.client.listRoleAssignments()).length;
      await emulator.client.setConfig({ roleAssignmentsPerSubscription: existing + 1 });
      await assign(CONTAINER_SCOPE, ROLE_IDS.storageBlobDataReader, app.principalId, 'ServicePrincipal');
      const error = await failure(
        assign(CONTAINER_SCOPE, ROLE_IDS.storageBlobDataContributor, app.principalId, 'ServicePrincipal'),
      );
      expect([error.statusCode, error.code, error.message]).toEqual([
        400,
        'RoleAssignmentLimitExceeded',
        'No more role assignments can be created.',
      ]);
    });

    it("throttles per caller and subscription with ARM's 429 and Retry-After, counted by limit", async () => {
      await emulator.client.setConfig({
        authorizationRateLimits: { writes: { bucketSize: 2, refillPerSecond: 0.5 } },
      });
      await emulator.client.resetCounters();
      await assign(CONTAINER_SCOPE, ROLE_IDS.storageBlobDataReader, app.principalId, 'ServicePrincipal');
      await assign(CONTAINER_SCOPE, ROLE_IDS.storageBlobDataContributor, app.principalId, 'ServicePrincipal');
      const error = await failure(
        assign(ACCOUNT_SCOPE, ROLE_IDS.storageBlobDataReader, app.principalId, 'ServicePrincipal'),
      );
      expect([error.statusCode, error.code]).toEqual([429, 'TooManyRequests']);
      expect(error.response?.headers.get('retry-after')).toBe('2');
      // Reads have their own bucket.
      expect(await authz.roleDefinitions.get(SUB_SCOPE, ROLE_IDS.reader)).toMatchObject({
        roleName: 'Reader',
      });
      const counters = await emulator.client.counters();
      expect(counters.authorization.throttledByLimit).toEqual({ 'writes/perPrincipal': 1 });
      expect(counters.authorization.byOperationAndStatus.roleAssignmentPut).toEqual({ '201': 2, '429': 1 });
      expect(counters.authorization.writes).toBe(3);
    });

    it('answers 401 with a challenge for a token of another audience, as ARM does', async () => {
      const wrong = await controllerCredential.getToken(STORAGE_SCOPE);
      const error = await failure(
        authorizationClient({ getToken: async () => wrong }).roleAssignments.get(CONTAINER_SCOPE, newName()),
      );
      expect(error.statusCode).toBe(401);
    });
  });
});

describe('Blob data plane', () => {
  beforeAll(async () => {
    await emulator.client
      .seedRoleAssignment({
        scope: RG_SCOPE,
        roleName: 'Role Based Access Control Administrator',
        principalId: controller.principalId,
        principalType: 'ServicePrincipal',
        condition: BLOB_ROLES_ONLY,
        conditionVersion: '2.0',
      })
      .catch((error: Error) => {
        // Seeded already by the role assignment tests when they ran first.
        if (!error.message.includes('RoleAssignmentExists')) throw error;
      });
  });

  it('reads with the pod’s env: denied before the assignment, allowed after, denied again after removal', async () => {
    const credential = podCredential(appEnv);
    const before = await failure(readBlob(credential));
    expect([before.statusCode, before.code]).toEqual([403, 'AuthorizationPermissionMismatch']);
    expect(before.message).toContain(
      'This request is not authorized to perform this operation using this permission.',
    );

    const { name } = await assign(
      CONTAINER_SCOPE,
      ROLE_IDS.storageBlobDataReader,
      app.principalId,
      'ServicePrincipal',
    );
    expect(await readBlob(credential)).toBe('{"run":1}');
    // Only at or below the assignment's scope (a HEAD: the code comes in x-ms-error-code only).
    const elsewhere = await failure(
      blobService(credential).getContainerClient('other').getBlobClient('state.json').getProperties(),
    );
    expect([elsewhere.statusCode, elsewhere.details?.errorCode]).toEqual([
      403,
      'AuthorizationPermissionMismatch',
    ]);
    // A reader does not write.
    const write = await failure(
      blobService(credential).getContainerClient(CONTAINER).getBlockBlobClient('out.json').upload('{}', 2),
    );
    expect([write.statusCode, write.code]).toEqual([403, 'AuthorizationPermissionMismatch']);

    await authz.roleAssignments.delete(CONTAINER_SCOPE, name);
    const after = await failure(readBlob(credential));
    expect(after.code).toBe('AuthorizationPermissionMismatch');
  });

  it('writes with Storage Blob Data Contributor at the storage account, above the container', async () => {
    const credential = podCredential(appEnv);
    await assign(ACCOUNT_SCOPE, ROLE_IDS.storageBlobDataContributor, app.principalId, 'ServicePrincipal');
    const blob = blobService(credential).getContainerClient(CONTAINER).getBlockBlobClient('run-2.json');
    await blob.upload('{"run":2}', 9);
    expect(await readBlob(credential, 'run-2.json')).toBe('{"run":2}');
    const props = await blob.getProperties();
    expect(props.contentLength).toBe(9);
    const missing = await failure(readBlob(credential, 'nope.json'));
    expect([missing.statusCode, missing.code]).toEqual([404, 'BlobNotFound']);
  });

  it('takes effect only after the propagation delay, and removal too', async () => {
    await emulator.client.setConfig({ roleAssignmentPropagationSeconds: 2 });
    const credential = podCredential(appEnv);
    const { name } = await assign(
      CONTAINER_SCOPE,
      ROLE_IDS.storageBlobDataReader,
      app.principalId,
      'ServicePrincipal',
    );
    expect((await failure(readBlob(credential))).code).toBe('AuthorizationPermissionMismatch');
    await sleep(2100);
    expect(await readBlob(credential)).toBe('{"run":1}');
    await authz.roleAssignments.delete(CONTAINER_SCOPE, name);
    expect(await readBlob(credential)).toBe('{"run":1}');
    await sleep(2100);
    expect((await failure(readBlob(credential))).code).toBe('AuthorizationPermissionMismatch');
  });

  it('checks the bearer token: audience, signature, expiry, presence and service version', async () => {
    await emulator.client.seedRoleAssignment({
      scope: CONTAINER_SCOPE,
      roleName: 'Storage Blob Data Reader',
      principalId: app.principalId,
    });
    const path = `/${ACCOUNT}/${CONTAINER}/state.json`;
    const version = { 'x-ms-version': '2026-02-06' };
    const credential = podCredential(appEnv);
    const storageToken = (await credential.getToken(STORAGE_SCOPE)).token;
    expect((await rawBlob(path, { ...version, authorization: `Bearer ${storageToken}` })).body).toBe(
      '{"run":1}',
    );

    const challenge = `Bearer authorization_uri=https://login.microsoftonline.com/${TENANT}/oauth2/authorize resource_id=https://storage.azure.com`;
    const armToken = (await credential.getToken(ARM_SCOPE)).token;
    const wrongAudience = await rawBlob(path, { ...version, authorization: `Bearer ${armToken}` });
    expect([wrongAudience.status, wrongAudience.headers['x-ms-error-code']]).toEqual([
      401,
      'InvalidAuthenticationInfo',
    ]);
    expect(wrongAudience.headers['www-authenticate']).toBe(challenge);
    expect(wrongAudience.body).toContain(
      '<AuthenticationErrorDetail>Audience validation failed. Audience did not match.</AuthenticationErrorDetail>',
    );

    const [header, payload] = storageToken.split('.');
    const forged = await rawBlob(path, {
      ...version,
      authorization: `Bearer ${header}.${payload}.c2lnbmF0dXJl`,
    });
    expect([forged.status, forged.headers['x-ms-error-code']]).toEqual([401, 'InvalidAuthenticationInfo']);

    const none = await rawBlob(path, version);
    expect([none.status, none.headers['x-ms-error-code'], none.headers['www-authenticate']]).toEqual([
      401,
      'NoAuthenticationInformation',
      challenge,
    ]);

    const old = await rawBlob(path, {
      'x-ms-version': '2017-07-29',
      authorization: `Bearer ${storageToken}`,
    });
    expect([old.status, old.headers['x-ms-error-code']]).toEqual([403, 'AuthenticationFailed']);

    await emulator.client.setConfig({ tokenLifetimeSecondsByClientId: { [controller.clientId]: 1 } });
    const shortLived = new ClientAssertionCredential(
      TENANT,
      controller.clientId,
      () => issuer.mint({ subject: CONTROLLER_SUBJECT, audience: EXCHANGE_AUDIENCE }),
      { authorityHost: emulator.url, disableInstanceDiscovery: true, ...trust },
    );
    const expiring = (await shortLived.getToken(STORAGE_SCOPE)).token;
    await emulator.client.setConfig({ tokenLifetimeSecondsByClientId: {} });
    await sleep(2100);
    const expired = await rawBlob(path, { ...version, authorization: `Bearer ${expiring}` });
    expect([expired.status, expired.headers['x-ms-error-code']]).toEqual([401, 'InvalidAuthenticationInfo']);
    expect(expired.body).toContain('Lifetime validation failed. The token is expired.');

    const counters = await emulator.client.counters();
    expect(counters.blob.byErrorCode.InvalidAuthenticationInfo).toBeGreaterThanOrEqual(3);
    expect(counters.blob.byErrorCode.NoAuthenticationInformation).toBeGreaterThanOrEqual(1);
  });
});
