// The Azure emulator against the real SDKs: @azure/arm-msi's ManagedServiceIdentityClient for the
// ARM subset and @azure/identity (ClientAssertionCredential, WorkloadIdentityCredential) for the
// Entra token endpoint, with client assertions from a local OIDC issuer. Self-contained: its own
// CA, emulator process and issuer, so it does not need the shared harness.
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { ClientAssertionCredential, type TokenCredential, WorkloadIdentityCredential } from '@azure/identity';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AZURE_RATE_LIMITS,
  FIC_UNSUPPORTED_LOCATIONS,
  type IdentityView,
  type RuntimeSettings,
} from '../harness/azure-emulator/client.ts';
import { type FakeOidcIssuer, startFakeOidcIssuer } from '../harness/azure-emulator/fake-oidc-issuer.ts';
import { type AzureEmulator, startAzureEmulator } from '../harness/azure-emulator/launch.ts';
import { trustingPipelineOptions } from '../harness/azure-emulator/trusting-http-client.ts';
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from '../harness/pki.ts';
import { type PostgresServer, startPostgres } from '../harness/postgres.ts';
import { makeTempDir, makeWorldReadable, removeTempDir } from '../harness/processes.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SUBSCRIPTION = '00000000-0000-4000-8000-000000000001';
const OTHER_SUBSCRIPTION = '00000000-0000-4000-8000-000000000002';
const RG = 'rg-entra-access';
const ARM_SCOPE = 'https://management.azure.com/.default';
const PG_SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';
const EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';
const CONTROLLER_SUBJECT = 'system:serviceaccount:entra-access:controller';

let dir: string;
let caPem: string;
let ca: CertificateAuthority;
let emulator: AzureEmulator;
let issuer: FakeOidcIssuer;
let controller: IdentityView;
let credential: ClientAssertionCredential;
let arm: ManagedServiceIdentityClient;
let agent: Agent;
let trust: ReturnType<typeof trustingPipelineOptions>;
let names = 0;
/** The emulator's settings as it started, before any test changed them. */
let startSettings: RuntimeSettings;

/** Unique per test, so tests never share identities or FICs. */
function uniqueName(prefix: string): string {
  return `${prefix}-${++names}-${process.pid}`;
}

function armClient(
  cred: TokenCredential,
  subscriptionId = SUBSCRIPTION,
  maxRetries = 2,
): ManagedServiceIdentityClient {
  return new ManagedServiceIdentityClient(cred, subscriptionId, {
    endpoint: emulator.url,
    credentialScopes: [ARM_SCOPE],
    // Fast retries: the default backoff (seconds) would make the fault tests slow.
    retryOptions: { maxRetries, retryDelayInMs: 20, maxRetryDelayInMs: 100 },
    ...trust,
  });
}

async function newIdentity(subscriptionId = SUBSCRIPTION): Promise<IdentityView> {
  return emulator.client.createIdentity({ subscriptionId, resourceGroup: RG, name: uniqueName('uami') });
}

function fic(subject: string, extra: { issuer?: string; audiences?: string[] } = {}) {
  return {
    issuer: extra.issuer ?? issuer.issuer,
    subject,
    audiences: extra.audiences ?? [EXCHANGE_AUDIENCE],
  };
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** A plain HTTPS call, for what the SDKs hide (status codes, headers, exact error bodies). */
function raw(method: string, path: string, options: { token?: string; form?: Record<string, string> } = {}) {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const payload = options.form ? new URLSearchParams(options.form).toString() : undefined;
  if (payload) headers['content-type'] = 'application/x-www-form-urlencoded';
  return new Promise<RawResponse>((resolve, reject) => {
    const req = request(new URL(path, emulator.url), { method, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : {} }),
      );
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function identityPath(identity: IdentityView, subscriptionId = SUBSCRIPTION): string {
  return (
    `/subscriptions/${subscriptionId}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/` +
    `userAssignedIdentities/${identity.name}`
  );
}

async function tokenRequest(clientId: string, assertion: string, scope = ARM_SCOPE): Promise<RawResponse> {
  return raw('POST', `/${TENANT}/oauth2/v2.0/token`, {
    form: {
      grant_type: 'client_credentials',
      client_id: clientId,
      scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    },
  });
}

/** The error an SDK call rejects with (RestError from core-client). */
async function failure(
  promise: Promise<unknown>,
): Promise<{ statusCode?: number; code?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { statusCode?: number; code?: string; message: string };
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  dir = makeTempDir('azure-emulator');
  ca = await createCertificateAuthority('entra-access azure-emulator test CA');
  caPem = ca.certPem;
  const leaf = await issueCertificate(ca, {
    commonName: 'azure-emulator',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    usage: 'server',
  });
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem, { mode: 0o600 });
  agent = new Agent({ ca: caPem });
  trust = trustingPipelineOptions(caPem);

  [emulator, issuer] = await Promise.all([
    startAzureEmulator({
      dir,
      caFile: join(dir, 'ca.crt'),
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      tenantId: TENANT,
    }),
    // The issuer plays the kube-apiserver; the emulator trusts its cert through the same CA.
    startFakeOidcIssuer(leaf),
  ]);
  startSettings = await emulator.client.getConfig();

  // The controller's own identity, its FIC made out of band as an administrator would.
  controller = await emulator.client.createIdentity({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: RG,
    name: 'ctl',
  });
  await emulator.client.putFederatedCredential(controller.id, 'controller', fic(CONTROLLER_SUBJECT));
  credential = new ClientAssertionCredential(
    TENANT,
    controller.clientId,
    () => issuer.mint({ subject: CONTROLLER_SUBJECT, audience: EXCHANGE_AUDIENCE }),
    { authorityHost: emulator.url, disableInstanceDiscovery: true, ...trust },
  );
  arm = armClient(credential);
  // Warm the token cache, so timing-sensitive tests measure ARM only.
  await arm.userAssignedIdentities.get(RG, 'ctl');
});

afterAll(async () => {
  await emulator?.stop();
  await issuer?.close();
  agent?.destroy();
  if (dir) removeTempDir(dir);
});

beforeEach(async () => {
  await emulator.client.clearFaults();
  // Azure's rate limits are on by default (checked below). Most tests here pin one ARM or Entra
  // rule each and call one identity several times a second, far past Azure's 0.25–0.5 requests/s
  // per identity, so they lift the limits; the throttling tests switch them back on.
  await emulator.client.setConfig({
    writeLatencyMs: 0,
    ficPropagationSeconds: 0,
    rateLimits: {},
    rateLimitsBySubscription: { [SUBSCRIPTION]: null, [OTHER_SUBSCRIPTION]: null },
    ficsUnsupported: { locations: [...FIC_UNSUPPORTED_LOCATIONS], subscriptions: [], identities: [] },
  });
});

describe('ARM: user-assigned identities', () => {
  it('returns the identity, matching path segments case-insensitively but keeping stored casing', async () => {
    const identity = await emulator.client.createIdentity({
      subscriptionId: SUBSCRIPTION,
      resourceGroup: RG,
      name: uniqueName('MixedCase'),
    });
    const got = await arm.userAssignedIdentities.get(RG.toUpperCase(), identity.name.toLowerCase());
    expect(got).toMatchObject({
      id: identity.id,
      name: identity.name,
      type: 'Microsoft.ManagedIdentity/userAssignedIdentities',
      clientId: identity.clientId,
      principalId: identity.principalId,
      tenantId: TENANT,
    });
  });

  it('answers 404 ResourceNotFound for an unknown identity', async () => {
    const error = await failure(arm.userAssignedIdentities.get(RG, 'does-not-exist'));
    expect(error.statusCode).toBe(404);
    expect(error.code).toBe('ResourceNotFound');
    expect(error.message).toBe(
      `The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/does-not-exist' under resource group '${RG}' was not found.`,
    );
  });
});

describe('ARM: federated identity credentials', () => {
  it('creates, reads, lists, updates and deletes', async () => {
    const identity = await newIdentity();
    const statuses: number[] = [];
    const onResponse = (response: { status: number }) => {
      statuses.push(response.status);
    };
    const created = await arm.federatedIdentityCredentials.createOrUpdate(
      RG,
      identity.name,
      'app-one',
      fic('system:serviceaccount:apps:one'),
      { onResponse },
    );
    expect(created).toMatchObject({
      id: `${identity.id}/federatedIdentityCredentials/app-one`,
      name: 'app-one',
      type: 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials',
      issuer: issuer.issuer,
      subject: 'system:serviceaccount:apps:one',
      audiences: [EXCHANGE_AUDIENCE],
    });
    await arm.federatedIdentityCredentials.createOrUpdate(
      RG,
      identity.name,
      'APP-ONE',
      fic('system:serviceaccount:apps:one-renamed'),
      { onResponse },
    );
    expect(statuses).toEqual([201, 200]);

    const got = await arm.federatedIdentityCredentials.get(RG, identity.name, 'app-one');
    expect(got.name).toBe('app-one');
    expect(got.subject).toBe('system:serviceaccount:apps:one-renamed');

    await arm.federatedIdentityCredentials.createOrUpdate(
      RG,
      identity.name,
      'app-two',
      fic('system:serviceaccount:apps:two'),
    );
    const listed = [];
    for await (const item of arm.federatedIdentityCredentials.list(RG, identity.name)) listed.push(item.name);
    expect(listed.sort()).toEqual(['app-one', 'app-two']);

    statuses.length = 0;
    await arm.federatedIdentityCredentials.delete(RG, identity.name, 'app-one', { onResponse });
    await arm.federatedIdentityCredentials.delete(RG, identity.name, 'app-one', { onResponse });
    expect(statuses).toEqual([200, 204]);
    const missing = await failure(arm.federatedIdentityCredentials.get(RG, identity.name, 'app-one'));
    expect(missing.statusCode).toBe(404);
    expect(missing.code).toBe('NotFound');
  });

  it('answers 404 ResourceNotFound for FIC operations on an unknown identity', async () => {
    const error = await failure(
      arm.federatedIdentityCredentials.createOrUpdate(
        RG,
        'no-such-identity',
        'x-fic',
        fic('system:serviceaccount:a:b'),
      ),
    );
    expect(error.statusCode).toBe(404);
    expect(error.code).toBe('ResourceNotFound');
  });

  it.each([
    ['too short', 'ab'],
    ['leading hyphen', '-abc'],
    ['dot', 'a.b.c'],
    ['too long', `a${'b'.repeat(120)}`],
  ])('rejects a name that is %s', async (_why, name) => {
    const identity = await newIdentity();
    const error = await failure(
      arm.federatedIdentityCredentials.createOrUpdate(
        RG,
        identity.name,
        name,
        fic('system:serviceaccount:a:b'),
      ),
    );
    expect(error.statusCode).toBe(400);
    expect(error.code).toBe('BadRequest');
    expect(error.message).toMatch(/name/);
  });

  it('accepts a 120-character name with hyphens and underscores', async () => {
    const identity = await newIdentity();
    const name = `a_-${'b'.repeat(117)}`;
    const created = await arm.federatedIdentityCredentials.createOrUpdate(
      RG,
      identity.name,
      name,
      fic('system:serviceaccount:a:b'),
    );
    expect(created.name).toBe(name);
  });

  it.each([
    ['no audience', { audiences: [] as string[] }, /audience/],
    ['two audiences', { audiences: [EXCHANGE_AUDIENCE, 'api://other'] }, /audience/],
    ['a plain-http issuer', { issuer: 'http://issuer.example' }, /https/],
    ['an issuer over 600 characters', { issuer: `https://issuer.example/${'x'.repeat(600)}` }, /issuer/],
  ])('rejects %s', async (_why, extra, message) => {
    const identity = await newIdentity();
    const error = await failure(
      arm.federatedIdentityCredentials.createOrUpdate(
        RG,
        identity.name,
        'bad-fic',
        fic('system:serviceaccount:a:b', extra),
      ),
    );
    expect(error.statusCode).toBe(400);
    expect(error.code).toBe('BadRequest');
    expect(error.message).toMatch(message);
  });

  it('rejects an empty subject and a subject over 600 characters', async () => {
    const identity = await newIdentity();
    for (const subject of ['', 's'.repeat(601)]) {
      const error = await failure(
        arm.federatedIdentityCredentials.createOrUpdate(RG, identity.name, 'bad-fic', fic(subject)),
      );
      expect(error.statusCode).toBe(400);
      expect(error.message).toMatch(/subject/);
    }
  });

  it('rejects a second FIC with the same issuer and subject, with Azure message', async () => {
    const identity = await newIdentity();
    const subject = 'system:serviceaccount:apps:dup';
    await arm.federatedIdentityCredentials.createOrUpdate(RG, identity.name, 'first', fic(subject));
    // Rewriting the same FIC with the same values is an update, not a duplicate.
    await arm.federatedIdentityCredentials.createOrUpdate(RG, identity.name, 'first', fic(subject));
    const error = await failure(
      arm.federatedIdentityCredentials.createOrUpdate(RG, identity.name, 'second', fic(subject)),
    );
    expect(error.statusCode).toBe(400);
    expect(error.code).toBe('BadRequest');
    expect(error.message).toBe('Issuer and subject combination already exists for this Managed Identity.');
  });

  it('allows 20 FICs per identity and refuses the 21st, while updates still work', async () => {
    const identity = await newIdentity();
    for (let i = 1; i <= 20; i++) {
      await arm.federatedIdentityCredentials.createOrUpdate(
        RG,
        identity.name,
        `fic-${i}`,
        fic(`system:serviceaccount:ns:sa${i}`),
      );
    }
    const error = await failure(
      arm.federatedIdentityCredentials.createOrUpdate(
        RG,
        identity.name,
        'fic-21',
        fic('system:serviceaccount:ns:sa21'),
      ),
    );
    expect(error.statusCode).toBe(400);
    expect(error.message).toMatch(/20/);
    const updated = await arm.federatedIdentityCredentials.createOrUpdate(
      RG,
      identity.name,
      'fic-1',
      fic('system:serviceaccount:ns:sa1-changed'),
    );
    expect(updated.subject).toBe('system:serviceaccount:ns:sa1-changed');
  });
});

describe('ARM: write concurrency, throttling and faults', () => {
  it('refuses a second concurrent write on one identity with 409', async () => {
    await emulator.client.setConfig({ writeLatencyMs: 300 });
    const identity = await newIdentity();
    const results = await Promise.allSettled([
      arm.federatedIdentityCredentials.createOrUpdate(
        RG,
        identity.name,
        'par-a',
        fic('system:serviceaccount:p:a'),
      ),
      arm.federatedIdentityCredentials.createOrUpdate(
        RG,
        identity.name,
        'par-b',
        fic('system:serviceaccount:p:b'),
      ),
    ]);
    const fulfilled = results.filter((r) => r.status === 'fulfilled');
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(1);
    const error = (rejected[0] as PromiseRejectedResult).reason as {
      statusCode: number;
      code: string;
      message: string;
    };
    expect(error.statusCode).toBe(409);
    expect(error.code).toBe('ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity');
    expect(error.message).toBe(
      `Too many Federated Identity Credentials are written concurrently for the managed identity ${identity.id}.`,
    );
  });

  it('lets writes on two different identities run in parallel', async () => {
    await emulator.client.setConfig({ writeLatencyMs: 300 });
    const [a, b] = await Promise.all([newIdentity(), newIdentity()]);
    const started = Date.now();
    const results = await Promise.all([
      arm.federatedIdentityCredentials.createOrUpdate(RG, a.name, 'par', fic('system:serviceaccount:p:a')),
      arm.federatedIdentityCredentials.createOrUpdate(RG, b.name, 'par', fic('system:serviceaccount:p:b')),
    ]);
    expect(results.map((r) => r.name)).toEqual(['par', 'par']);
    expect(Date.now() - started).toBeLessThan(550);
  });

  it('injects a 429 with Retry-After, which the SDK waits out and retries', async () => {
    const identity = await newIdentity();
    await emulator.client.addFault({
      method: 'PUT',
      pathContains: `/userAssignedIdentities/${identity.name}/`,
      status: 429,
      retryAfterSeconds: 1,
      count: 1,
      target: 'arm',
    });
    await emulator.client.resetCounters();
    const started = Date.now();
    await arm.federatedIdentityCredentials.createOrUpdate(
      RG,
      identity.name,
      'throttled',
      fic('system:serviceaccount:t:t'),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    const counters = await emulator.client.counters();
    expect(counters.arm.byOperationAndStatus.ficPut).toEqual({ '429': 1, '201': 1 });
  });

  it('shows the raw 429 with its Retry-After header and ARM error body', async () => {
    const identity = await newIdentity();
    const id = await emulator.client.addFault({
      pathContains: identity.name,
      status: 429,
      retryAfterSeconds: 7,
    });
    const token = (await credential.getToken(ARM_SCOPE))!.token;
    const response = await raw('GET', `${identityPath(identity)}?api-version=2024-11-30`, { token });
    expect(response.status).toBe(429);
    expect(response.headers['retry-after']).toBe('7');
    expect(response.body).toMatchObject({ error: { code: 'TooManyRequests' } });
    await emulator.client.removeFault(id);
    expect((await raw('GET', `${identityPath(identity)}?api-version=2024-11-30`, { token })).status).toBe(
      200,
    );
  });

  it('injects a 500 that the SDK retries and then reports', async () => {
    const identity = await newIdentity();
    await emulator.client.addFault({
      method: 'GET',
      pathContains: identity.name,
      status: 500,
      target: 'arm',
    });
    await emulator.client.resetCounters();
    const error = await failure(arm.userAssignedIdentities.get(RG, identity.name));
    expect(error.statusCode).toBe(500);
    expect(error.code).toBe('InternalServerError');
    // One try plus maxRetries (2) retries, all counted.
    const counters = await emulator.client.counters();
    expect(counters.arm.byOperationAndStatus.identityGet).toEqual({ '500': 3 });
  });

  it('delays a request without failing it (status 0, latency only)', async () => {
    const identity = await newIdentity();
    await emulator.client.addFault({ pathContains: identity.name, latencyMs: 300, count: 1 });
    const started = Date.now();
    await arm.userAssignedIdentities.get(RG, identity.name);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('throttles writes per identity when rate limits are configured', async () => {
    await emulator.client.setConfig({ rateLimits: { createOrUpdate: { perResource: 0.5 } } });
    const identity = await newIdentity();
    const token = (await credential.getToken(ARM_SCOPE))!.token;
    const put = (name: string) =>
      new Promise<RawResponse>((resolve, reject) => {
        const body = JSON.stringify({ properties: fic(`system:serviceaccount:rl:${name}`) });
        const req = request(
          new URL(
            `${identityPath(identity)}/federatedIdentityCredentials/${name}?api-version=2024-11-30`,
            emulator.url,
          ),
          {
            method: 'PUT',
            agent,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          },
          (res) => {
            let text = '';
            res.on('data', (c) => {
              text += c;
            });
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    expect((await put('rl-one')).status).toBe(201);
    const throttled = await put('rl-two');
    expect(throttled.status).toBe(429);
    expect(throttled.headers['retry-after']).toBe('2');
    expect(throttled.body).toMatchObject({ error: { code: 'TooManyRequests' } });
    // Another identity has its own bucket.
    const other = await newIdentity();
    await arm.federatedIdentityCredentials.createOrUpdate(
      RG,
      other.name,
      'rl-one',
      fic('system:serviceaccount:rl:x'),
    );
  });
});

describe("ARM: Azure's throttling of reads and writes", () => {
  let token: string;
  beforeEach(async () => {
    token = (await credential.getToken(ARM_SCOPE))!.token;
  });
  const get = (path: string) => raw('GET', `${path}?api-version=2024-11-30`, { token });
  const ficsPath = (identity: IdentityView, subscriptionId = SUBSCRIPTION) =>
    `${identityPath(identity, subscriptionId)}/federatedIdentityCredentials`;

  it("is on from the start, with Azure's documented numbers", () => {
    expect(startSettings.rateLimits).toEqual(AZURE_RATE_LIMITS);
    expect(AZURE_RATE_LIMITS).toEqual({
      createOrUpdate: { perTenant: 10, perSubscription: 2, perResource: 0.25 },
      get: { perTenant: 30, perSubscription: 10, perResource: 0.5 },
      list: { perTenant: 15, perSubscription: 5, perResource: 0.25 },
      delete: { perTenant: 10, perSubscription: 2, perResource: 0.25 },
    });
  });

  it('throttles GETs per identity at 0.5/s: the identity and its FICs share the bucket, other identities do not', async () => {
    await emulator.client.setConfig({ rateLimits: AZURE_RATE_LIMITS });
    const [identity, other] = await Promise.all([newIdentity(), newIdentity()]);
    await emulator.client.putFederatedCredential(identity.id, 'one', fic('system:serviceaccount:g:one'));
    await emulator.client.resetCounters();
    expect((await get(identityPath(identity))).status).toBe(200);
    const second = await get(identityPath(identity));
    expect(second.status).toBe(429);
    expect(second.headers['retry-after']).toBe('2');
    expect(second.body).toMatchObject({ error: { code: 'TooManyRequests' } });
    expect((await get(`${ficsPath(identity)}/one`)).status).toBe(429);
    expect((await get(identityPath(other))).status).toBe(200);
    const counters = await emulator.client.counters();
    expect(counters.arm.throttled).toEqual({
      total: 2,
      byOperation: { identityGet: 1, ficGet: 1 },
      byLimit: { 'get/perResource': 2 },
    });
    await sleep(2000);
    expect((await get(identityPath(identity))).status).toBe(200);
  });

  it('throttles FIC LISTs per identity at 0.25/s, apart from GETs', async () => {
    await emulator.client.setConfig({ rateLimits: AZURE_RATE_LIMITS });
    const identity = await newIdentity();
    expect((await get(ficsPath(identity))).status).toBe(200);
    const second = await get(ficsPath(identity));
    expect(second.status).toBe(429);
    expect(second.headers['retry-after']).toBe('4');
    expect((await get(identityPath(identity))).status).toBe(200);
    // The SDK sees a RestError it can read the wait from.
    const error = await failure(
      (async () => {
        for await (const _ of armClient(credential, SUBSCRIPTION, 0).federatedIdentityCredentials.list(
          RG,
          identity.name,
        )) {
          // drain
        }
      })(),
    );
    expect(error.statusCode).toBe(429);
  });

  it('throttles per subscription and per tenant, and a subscription may have limits of its own', async () => {
    await emulator.client.setConfig({ rateLimits: { get: { perSubscription: 1 }, list: { perTenant: 1 } } });
    const [a, b, elsewhere] = await Promise.all([
      newIdentity(),
      newIdentity(),
      newIdentity(OTHER_SUBSCRIPTION),
    ]);
    expect((await get(identityPath(a))).status).toBe(200);
    expect((await get(identityPath(b))).status).toBe(429);
    expect((await get(identityPath(elsewhere, OTHER_SUBSCRIPTION))).status).toBe(200);
    expect((await get(ficsPath(a))).status).toBe(200);
    expect((await get(ficsPath(elsewhere, OTHER_SUBSCRIPTION))).status).toBe(429);
    // OTHER_SUBSCRIPTION opts out: its requests draw on no bucket, not even the tenant's.
    await emulator.client.setConfig({ rateLimitsBySubscription: { [OTHER_SUBSCRIPTION]: {} } });
    expect((await get(ficsPath(elsewhere, OTHER_SUBSCRIPTION))).status).toBe(200);
    expect((await get(ficsPath(elsewhere, OTHER_SUBSCRIPTION))).status).toBe(200);
    expect((await get(ficsPath(b))).status).toBe(429);
    await expect(
      emulator.client.setConfig({ rateLimits: { get: { perIdentity: 1 } } } as never),
    ).rejects.toThrow(/perIdentity/);
  });

  it('throttles deletes apart from creates, each at 0.25/s per identity', async () => {
    await emulator.client.setConfig({ rateLimits: AZURE_RATE_LIMITS });
    const identity = await newIdentity();
    await emulator.client.putFederatedCredential(identity.id, 'old', fic('system:serviceaccount:d:old'));
    const sdk = armClient(credential, SUBSCRIPTION, 0);
    await sdk.federatedIdentityCredentials.createOrUpdate(
      RG,
      identity.name,
      'new',
      fic('system:serviceaccount:d:new'),
    );
    await sdk.federatedIdentityCredentials.delete(RG, identity.name, 'old');
    const error = await failure(sdk.federatedIdentityCredentials.delete(RG, identity.name, 'new'));
    expect(error.statusCode).toBe(429);
  });
});

describe('ARM: regions without federated identity credentials (405)', () => {
  const MESSAGE =
    'The request format was unexpected: Support for federated identity credentials not enabled.';

  async function ficCalls(identity: IdentityView, subscriptionId = SUBSCRIPTION) {
    const sdk = armClient(credential, subscriptionId, 0);
    return Promise.all([
      failure(
        sdk.federatedIdentityCredentials.createOrUpdate(
          RG,
          identity.name,
          'x-fic',
          fic('system:serviceaccount:r:x'),
        ),
      ),
      failure(sdk.federatedIdentityCredentials.get(RG, identity.name, 'x-fic')),
      failure(
        (async () => {
          for await (const _ of sdk.federatedIdentityCredentials.list(RG, identity.name)) {
            // drain
          }
        })(),
      ),
      failure(sdk.federatedIdentityCredentials.delete(RG, identity.name, 'x-fic')),
    ]);
  }

  it('answers every FIC operation 405 for an identity in a documented unsupported region; the identity itself reads fine', async () => {
    const identity = await emulator.client.createIdentity({
      subscriptionId: SUBSCRIPTION,
      resourceGroup: RG,
      name: uniqueName('my-south'),
      location: 'Malaysia South',
    });
    expect((await arm.userAssignedIdentities.get(RG, identity.name)).clientId).toBe(identity.clientId);
    for (const error of await ficCalls(identity)) {
      expect(error.statusCode).toBe(405);
      expect(error.message).toBe(MESSAGE);
    }
  });

  it('can be switched on for a subscription or an identity', async () => {
    const [byIdentity, bySubscription, unaffected] = await Promise.all([
      newIdentity(),
      newIdentity(OTHER_SUBSCRIPTION),
      newIdentity(),
    ]);
    await emulator.client.setConfig({
      ficsUnsupported: { subscriptions: [OTHER_SUBSCRIPTION], identities: [byIdentity.id.toUpperCase()] },
    });
    expect((await emulator.client.getConfig()).ficsUnsupported.locations).toEqual([
      ...FIC_UNSUPPORTED_LOCATIONS,
    ]);
    for (const error of [
      ...(await ficCalls(byIdentity)),
      ...(await ficCalls(bySubscription, OTHER_SUBSCRIPTION)),
    ])
      expect(error.statusCode).toBe(405);
    await arm.federatedIdentityCredentials.createOrUpdate(
      RG,
      unaffected.name,
      'fine',
      fic('system:serviceaccount:r:fine'),
    );
  });
});

describe('ARM: authentication, api-version and counters', () => {
  it('answers 401 AuthenticationFailed with a Bearer challenge without a valid ARM token', async () => {
    const identity = await newIdentity();
    const path = `${identityPath(identity)}?api-version=2024-11-30`;
    const pgToken = (await credential.getToken(PG_SCOPE))!.token;
    const armToken = (await credential.getToken(ARM_SCOPE))!.token;
    const forged = `${armToken.split('.').slice(0, 2).join('.')}.${'A'.repeat(342)}`;
    for (const token of [undefined, 'not-a-jwt', pgToken, forged]) {
      const response = await raw('GET', path, token ? { token } : {});
      expect(response.status).toBe(401);
      expect(response.body).toMatchObject({ error: { code: 'AuthenticationFailed' } });
      expect(String(response.headers['www-authenticate'])).toMatch(/^Bearer /);
    }
    const bogus: TokenCredential = {
      getToken: async () => ({ token: 'not-a-jwt', expiresOnTimestamp: Date.now() + 3_600_000 }),
    };
    const error = await failure(armClient(bogus).userAssignedIdentities.get(RG, identity.name));
    expect(error.statusCode).toBe(401);
    expect(error.code).toBe('AuthenticationFailed');
  });

  it('answers 400 MissingApiVersionParameter without api-version', async () => {
    const identity = await newIdentity();
    const token = (await credential.getToken(ARM_SCOPE))!.token;
    const response = await raw('GET', identityPath(identity), { token });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: { code: 'MissingApiVersionParameter' } });
  });

  it('counts requests by operation, status and read/write', async () => {
    const identity = await newIdentity();
    await emulator.client.resetCounters();
    await arm.userAssignedIdentities.get(RG, identity.name);
    await arm.federatedIdentityCredentials.createOrUpdate(
      RG,
      identity.name,
      'counted',
      fic('system:serviceaccount:c:c'),
    );
    await arm.federatedIdentityCredentials.get(RG, identity.name, 'counted');
    for await (const _ of arm.federatedIdentityCredentials.list(RG, identity.name)) {
      // drain
    }
    await arm.federatedIdentityCredentials.delete(RG, identity.name, 'counted');
    const counters = await emulator.client.counters();
    expect(counters.arm).toMatchObject({
      total: 5,
      reads: 3,
      writes: 2,
      byOperation: { identityGet: 1, ficPut: 1, ficGet: 1, ficList: 1, ficDelete: 1 },
      byStatus: { '200': 4, '201': 1 },
    });
    await emulator.client.resetCounters();
    expect((await emulator.client.counters()).arm.total).toBe(0);
  });
});

describe('Entra token endpoint', () => {
  it('issues Entra-shaped access tokens for ARM and PostgreSQL scopes', async () => {
    const identity = await newIdentity();
    await emulator.client.putFederatedCredential(identity.id, 'app', fic('system:serviceaccount:apps:web'));
    const assertion = await issuer.mint({
      subject: 'system:serviceaccount:apps:web',
      audience: EXCHANGE_AUDIENCE,
    });
    await emulator.client.resetCounters();

    const response = await tokenRequest(identity.clientId, assertion);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600 });
    const claims = decodeJwt(String(response.body.access_token));
    expect(claims).toMatchObject({
      iss: `https://sts.windows.net/${TENANT}/`,
      aud: 'https://management.azure.com/',
      oid: identity.principalId,
      tid: TENANT,
      appid: identity.clientId,
      azp: identity.clientId,
      idtyp: 'app',
    });

    const pgResponse = await tokenRequest(identity.clientId, assertion, PG_SCOPE);
    expect(decodeJwt(String(pgResponse.body.access_token)).aud).toBe(
      'https://ossrdbms-aad.database.windows.net',
    );
    const counters = await emulator.client.counters();
    expect(counters.token).toMatchObject({
      total: 2,
      byScope: { [ARM_SCOPE]: 1, [PG_SCOPE]: 1 },
      byOutcome: { success: 2 },
    });
  });

  it('works with the real WorkloadIdentityCredential reading a token file', async () => {
    const identity = await newIdentity();
    await emulator.client.putFederatedCredential(identity.id, 'wi-fic', fic('system:serviceaccount:apps:wi'));
    const tokenFilePath = join(dir, 'wi-token');
    writeFileSync(
      tokenFilePath,
      await issuer.mint({ subject: 'system:serviceaccount:apps:wi', audience: EXCHANGE_AUDIENCE }),
    );
    const wi = new WorkloadIdentityCredential({
      tenantId: TENANT,
      clientId: identity.clientId,
      tokenFilePath,
      authorityHost: emulator.url,
      disableInstanceDiscovery: true,
      ...trust,
    });
    const token = await wi.getToken(PG_SCOPE);
    expect(decodeJwt(token.token).oid).toBe(identity.principalId);
  });

  it('refuses a wrong audience or unknown subject with AADSTS70021', async () => {
    const identity = await newIdentity();
    await emulator.client.putFederatedCredential(identity.id, 'app', fic('system:serviceaccount:apps:web'));
    await emulator.client.resetCounters();
    const wrongAudience = await issuer.mint({
      subject: 'system:serviceaccount:apps:web',
      audience: 'api://other',
    });
    const unknownSubject = await issuer.mint({
      subject: 'system:serviceaccount:apps:other',
      audience: EXCHANGE_AUDIENCE,
    });
    for (const [assertion, subject, audience] of [
      [wrongAudience, 'system:serviceaccount:apps:web', 'api://other'],
      [unknownSubject, 'system:serviceaccount:apps:other', EXCHANGE_AUDIENCE],
    ] as const) {
      const response = await tokenRequest(identity.clientId, assertion);
      expect(response.status).toBe(400);
      expect(response.body.error).toBe('invalid_request');
      expect(response.body.error_codes).toEqual([70021]);
      expect(response.body.error_description).toContain(
        `AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: '${issuer.issuer}'. Assertion Subject: '${subject}'. Assertion Audience: '${audience}'.`,
      );
    }
    expect((await emulator.client.counters()).token.byOutcome).toEqual({ AADSTS70021: 2 });

    // As the SDK reports it.
    const cred = new ClientAssertionCredential(TENANT, identity.clientId, async () => wrongAudience, {
      authorityHost: emulator.url,
      disableInstanceDiscovery: true,
      ...trust,
    });
    expect((await failure(cred.getToken(ARM_SCOPE))).message).toContain('AADSTS70021');
  });

  it('refuses an assertion from an issuer the identity has no FIC for with AADSTS70021', async () => {
    const identity = await newIdentity();
    await emulator.client.putFederatedCredential(
      identity.id,
      'elsewhere',
      fic('system:serviceaccount:apps:web', { issuer: 'https://issuer.example' }),
    );
    const assertion = await issuer.mint({
      subject: 'system:serviceaccount:apps:web',
      audience: EXCHANGE_AUDIENCE,
    });
    const response = await tokenRequest(identity.clientId, assertion);
    expect(response.body.error_codes).toEqual([70021]);
  });

  it('refuses an expired assertion with AADSTS700024', async () => {
    const identity = await newIdentity();
    await emulator.client.putFederatedCredential(identity.id, 'app', fic('system:serviceaccount:apps:web'));
    const expired = await issuer.mint({
      subject: 'system:serviceaccount:apps:web',
      audience: EXCHANGE_AUDIENCE,
      expiresInSeconds: -10,
    });
    const response = await tokenRequest(identity.clientId, expired);
    expect(response.status).toBe(401);
    expect(response.body.error).toBe('invalid_client');
    expect(String(response.body.error_description)).toMatch(
      /^AADSTS700024: Client assertion is not within its valid time range\./,
    );
  });

  it('refuses an unknown client id with AADSTS700016', async () => {
    const assertion = await issuer.mint({ subject: CONTROLLER_SUBJECT, audience: EXCHANGE_AUDIENCE });
    const unknown = '99999999-9999-4999-8999-999999999999';
    const response = await tokenRequest(unknown, assertion);
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('unauthorized_client');
    expect(String(response.body.error_description)).toContain(
      `AADSTS700016: Application with identifier '${unknown}' was not found in the directory '${TENANT}'.`,
    );
  });

  it('refuses a bad signature', async () => {
    const forged = await issuer.mint({
      subject: CONTROLLER_SUBJECT,
      audience: EXCHANGE_AUDIENCE,
      foreignKey: true,
    });
    const response = await tokenRequest(controller.clientId, forged);
    expect(response.status).toBe(401);
    expect(response.body.error_codes).toEqual([700027]);
  });

  it('re-fetches the issuer keys when the issuer rotates its signing key', async () => {
    await issuer.rotateKey();
    const fetchesBefore = issuer.jwksFetches();
    const assertion = await issuer.mint({ subject: CONTROLLER_SUBJECT, audience: EXCHANGE_AUDIENCE });
    expect((await tokenRequest(controller.clientId, assertion)).status).toBe(200);
    expect(issuer.jwksFetches()).toBe(fetchesBefore + 1);
    // Cached from now on.
    expect((await tokenRequest(controller.clientId, assertion)).status).toBe(200);
    expect(issuer.jwksFetches()).toBe(fetchesBefore + 1);
  });

  it('does not match a FIC created through ARM until the propagation delay has passed', async () => {
    await emulator.client.setConfig({ ficPropagationSeconds: 1 });
    const identity = await newIdentity();
    await arm.federatedIdentityCredentials.createOrUpdate(
      RG,
      identity.name,
      'fresh',
      fic('system:serviceaccount:apps:new'),
    );
    const assertion = await issuer.mint({
      subject: 'system:serviceaccount:apps:new',
      audience: EXCHANGE_AUDIENCE,
    });
    const early = await tokenRequest(identity.clientId, assertion);
    expect(early.status).toBe(400);
    expect(early.body.error_codes).toEqual([70021]);
    await sleep(1100);
    expect((await tokenRequest(identity.clientId, assertion)).status).toBe(200);
  });

  it('serves the discovery document MSAL reads', async () => {
    const response = await raw('GET', `/${TENANT}/v2.0/.well-known/openid-configuration`);
    expect(response.body).toMatchObject({
      token_endpoint: `${emulator.url}/${TENANT}/oauth2/v2.0/token`,
      issuer: `${emulator.url}/${TENANT}/v2.0`,
      authorization_endpoint: `${emulator.url}/${TENANT}/oauth2/v2.0/authorize`,
      jwks_uri: `${emulator.url}/${TENANT}/discovery/v2.0/keys`,
    });
  });
});

describe('control API', () => {
  it('lists identities with their FICs and deletes identities', async () => {
    const identity = await newIdentity(OTHER_SUBSCRIPTION);
    await emulator.client.putFederatedCredential(identity.id, 'listed', fic('system:serviceaccount:l:l'));
    const listed = (await emulator.client.listIdentities()).find((i) => i.id === identity.id);
    expect(listed?.federatedIdentityCredentials.map((f) => f.name)).toEqual(['listed']);
    await emulator.client.deleteIdentity(identity.id);
    expect((await emulator.client.listIdentities()).some((i) => i.id === identity.id)).toBe(false);
    const error = await failure(
      armClient(credential, OTHER_SUBSCRIPTION).userAssignedIdentities.get(RG, identity.name),
    );
    expect(error.statusCode).toBe(404);
  });

  it('rejects bad input with a readable error', async () => {
    await expect(emulator.client.setConfig({ writeLatencyMs: -1 })).rejects.toThrow(/writeLatencyMs/);
    await expect(emulator.client.addFault({ status: 42 })).rejects.toThrow(/status/);
  });
});

describe('PostgreSQL gateway: an Entra token logs in as the mapped role', () => {
  let pgDir: string;
  let server: PostgresServer;
  let pgEmulator: AzureEmulator;
  let app: IdentityView;
  const role = 'app-role';

  async function dbToken(): Promise<string> {
    const assertion = await issuer.mint({
      subject: 'system:serviceaccount:apps:db',
      audience: EXCHANGE_AUDIENCE,
    });
    const response = await raw('POST', `${pgEmulator.url}/${TENANT}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: app.clientId,
        scope: PG_SCOPE,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      },
    });
    expect(response.status).toBe(200);
    return String(response.body.access_token);
  }

  /** Logs in as the role; resolves to undefined on success or the server's error message. */
  async function login(password: string): Promise<string | undefined> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: pgEmulator.postgresPort,
      database: 'postgres',
      user: role,
      password,
      ssl: { ca: caPem },
    });
    try {
      await client.connect();
      return undefined;
    } catch (error) {
      return (error as Error).message;
    } finally {
      await client.end().catch(() => {});
    }
  }

  beforeAll(async () => {
    // PostgreSQL runs as the postgres OS user, which must reach its data directory.
    pgDir = makeTempDir('azure-emulator-pg');
    await makeWorldReadable(pgDir);
    server = await startPostgres({ dir: pgDir, tenantId: TENANT, ca, caFile: join(dir, 'ca.crt') });
    pgEmulator = await startAzureEmulator({
      dir: pgDir,
      caFile: join(dir, 'ca.crt'),
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      tenantId: TENANT,
      postgres: { adminUrl: server.superuserUrl(), upstreamSocket: server.socketPath },
    });
    app = await pgEmulator.client.createIdentity({
      subscriptionId: SUBSCRIPTION,
      resourceGroup: RG,
      name: 'db-app',
    });
    await pgEmulator.client.putFederatedCredential(app.id, 'db-app', fic('system:serviceaccount:apps:db'));
    const admin = new pg.Client({ connectionString: server.superuserUrl() });
    await admin.connect();
    try {
      await admin.query("SELECT pgaadauth_create_principal_with_oid($1, $2, 'service', false, false)", [
        role,
        app.principalId,
      ]);
    } finally {
      await admin.end();
    }
  }, 60_000);

  afterAll(async () => {
    await pgEmulator?.stop();
    await server?.stop();
    if (pgDir) removeTempDir(pgDir);
  });

  it('lets every unexpired token log in, as Entra does, and refuses anything else', async () => {
    const first = await dbToken();
    expect(await login(first)).toBeUndefined();
    const second = await dbToken();
    expect(await login(second)).toBeUndefined();
    expect(await login(first)).toBeUndefined();
    expect(await login('not-the-token')).toMatch(/password authentication failed/);
    // A forged token: right shape, signed by someone else.
    const [header, payload] = first.split('.');
    expect(await login(`${header}.${payload}.${'A'.repeat(342)}`)).toMatch(/password authentication failed/);
  });

  it('requires TLS, as Azure does by default', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: pgEmulator.postgresPort,
      database: 'postgres',
      user: role,
      password: await dbToken(),
    });
    await expect(client.connect()).rejects.toThrow(/SSL connection is required/);
    await client.end().catch(() => {});
  });

  it('refuses a token once it has expired', async () => {
    await pgEmulator.client.setConfig({ tokenLifetimeSeconds: 1 });
    try {
      const token = await dbToken();
      expect(decodeJwt(token).exp! - decodeJwt(token).iat!).toBe(1);
      await sleep(2100);
      expect(await login(token)).toMatch(/password authentication failed/);
    } finally {
      await pgEmulator.client.setConfig({ tokenLifetimeSeconds: 3600 });
    }
  });

  it('revoke ends the tokens issued so far, and a new one works', async () => {
    const token = await dbToken();
    expect(await login(token)).toBeUndefined();
    expect(await pgEmulator.client.revoke(app.principalId)).toBe(role);
    expect(await login(token)).toMatch(/password authentication failed/);
    expect(await login(await dbToken())).toBeUndefined();
  });

  it('still issues tokens for an identity without a database role', async () => {
    const other = await pgEmulator.client.createIdentity({
      subscriptionId: SUBSCRIPTION,
      resourceGroup: RG,
      name: 'no-role',
    });
    await pgEmulator.client.putFederatedCredential(
      other.id,
      'no-role',
      fic('system:serviceaccount:apps:none'),
    );
    const assertion = await issuer.mint({
      subject: 'system:serviceaccount:apps:none',
      audience: EXCHANGE_AUDIENCE,
    });
    const response = await raw('POST', `${pgEmulator.url}/${TENANT}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: other.clientId,
        scope: PG_SCOPE,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      },
    });
    expect(response.status).toBe(200);
    expect(await pgEmulator.client.revoke(other.principalId)).toBeNull();
  });
});
