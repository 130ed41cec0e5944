// The TLS modes of an EntraDatabaseServer against a real server certificate: the operator's own
// connection path (PostgresDatabase: the CA from the server's Secret, the pool's TLS options, an
// Entra token through the emulator's gateway) reaching the harness PostgreSQL by a host name its
// certificate does not list. The gateway's certificate, from the harness CA, lists DNS:localhost
// and IP:127.0.0.1; `127.1` reaches the same address (getaddrinfo reads it as 127.0.0.1) but is
// checked as a DNS name, which is not on the certificate: the private-DNS-name case on Azure,
// where the name the operator dials is not the one the server's certificate was issued for.
import { lookup } from 'node:dns/promises';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_PLURAL } from '../../src/api/constants.ts';
import type { EntraDatabaseServer, SslMode } from '../../src/api/types.ts';
import { TokenSource } from '../../src/azure/credentials.ts';
import { PostgresDatabase } from '../../src/controller/database.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { adminKubeConfig, harnessInfo, uniqueName } from '../harness/context.ts';
import { API } from '../harness/kube.ts';
import { createCertificateAuthority } from '../harness/pki.ts';
import { createDatabaseServer } from '../harness/scenario.ts';
import { operatorCredential, POSTGRES_SCOPE } from '../harness/workload-identity.ts';

const harness = harnessInfo();

/** A name for the gateway's address that its certificate does not list. */
const UNLISTED_HOST = '127.1';

describe.skipIf(!harness)('sslMode against the harness server certificate', () => {
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let core: k8s.CoreV1Api;
  let database: PostgresDatabase;
  const made: string[] = [];

  /** An EntraDatabaseServer as the apiserver stored it (CRD defaults and validation applied). */
  async function server(options: {
    host: string;
    sslMode: SslMode;
    caPem?: string;
  }): Promise<EntraDatabaseServer> {
    const name = uniqueName(`tls-${options.sslMode}`);
    made.push(name);
    await createDatabaseServer(harness!, kc, { name, namespaces: [], databases: [], ...options });
    return (await custom.getClusterCustomObject({
      ...API,
      plural: SERVER_PLURAL,
      name,
    })) as EntraDatabaseServer;
  }

  /** PostgresDatabase.probe's error message (the EntraDatabaseServer's Ready message), or a failure. */
  async function refusal(target: EntraDatabaseServer): Promise<string> {
    try {
      await database.probe(target);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error(`${target.spec.sslMode} to ${target.spec.host} connected; a refusal was expected`);
  }

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    core = kc.makeApiClient(k8s.CoreV1Api);
    const credential = await operatorCredential(harness!, kc);
    const tokens = new TokenSource({ createCredential: () => credential, postgresScope: POSTGRES_SCOPE });
    database = new PostgresDatabase({
      core,
      tokensFor: () => tokens,
      defaultScope: POSTGRES_SCOPE,
      logger: createLogger('error'),
    });
  });

  afterAll(async () => {
    await database?.end();
    for (const name of made) {
      await custom?.deleteClusterCustomObject({ ...API, plural: SERVER_PLURAL, name }).catch(() => {});
      await core
        ?.deleteNamespacedSecret({ namespace: harness!.azure.operator.namespace, name: `${name}-ca` })
        .catch(() => {});
    }
  });

  it(`reaches the gateway at ${UNLISTED_HOST}, a name its certificate does not list`, async () => {
    expect((await lookup(UNLISTED_HOST, { family: 4 })).address).toBe('127.0.0.1');
    // The certificate's own names work in verify-full: the next tests differ only in the name.
    const listed = await server({ host: 'localhost', sslMode: 'verify-full' });
    await expect(database.probe(listed)).resolves.toMatchObject({ entraFunctions: true });
  });

  it('verify-ca connects through the unlisted name: the chain is checked, the name is not', async () => {
    const target = await server({ host: UNLISTED_HOST, sslMode: 'verify-ca' });
    expect(target.spec).toMatchObject({ host: UNLISTED_HOST, sslMode: 'verify-ca' });
    const info = await database.probe(target);
    expect(info).toMatchObject({ entraFunctions: true });
    expect(info.version).toMatch(/^\d+/);
  });

  it('verify-full refuses the unlisted name, naming the mismatch', async () => {
    const message = await refusal(await server({ host: UNLISTED_HOST, sslMode: 'verify-full' }));
    expect(message).toContain("Hostname/IP does not match certificate's altnames");
    expect(message).toContain(`Host: ${UNLISTED_HOST}. is not in the cert's altnames: DNS:localhost`);
  });

  it('verify-ca still refuses a certificate its CA did not issue', async () => {
    const other = await createCertificateAuthority('another CA');
    const message = await refusal(
      await server({ host: UNLISTED_HOST, sslMode: 'verify-ca', caPem: other.certPem }),
    );
    expect(message).toMatch(
      /self[- ]signed certificate in certificate chain|unable to verify the first certificate/,
    );
    expect(message).not.toContain('altnames');
  });
});
