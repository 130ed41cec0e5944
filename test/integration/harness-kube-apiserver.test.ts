// The harness control plane is a real kube-apiserver: prove CRUD with the real client, RBAC
// enforcement, TokenRequest, and anonymous OIDC discovery of the service-account issuer.

import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeConfig, harnessInfo, uniqueName } from '../harness/context.ts';
import { mergePatch } from '../harness/kube.ts';

const harness = harnessInfo();

function anonymousGet(
  url: string,
  caFile: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    request(url, { ca: readFileSync(caFile) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(body) }));
    })
      .on('error', reject)
      .end();
  });
}

describe.skipIf(!harness)('harness kube-apiserver', () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  const namespace = uniqueName('kube-crud');

  beforeAll(async () => {
    kc = adminKubeConfig(harness!);
    core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await core?.deleteNamespace({ name: namespace }).catch(() => {});
  });

  it('reports the pinned Kubernetes version', async () => {
    const version = await kc.makeApiClient(k8s.VersionApi).getCode();
    expect(version.gitVersion).toBe(harness!.versions.kubernetes);
    expect(version.gitVersion).toMatch(/^v1\.\d+\.\d+/);
  });

  it('creates, reads, merge-patches, lists and deletes with @kubernetes/client-node', async () => {
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'settings', labels: { app: 'crud' } }, data: { a: '1' } },
    });
    const read = await core.readNamespacedConfigMap({ namespace, name: 'settings' });
    expect(read.data).toEqual({ a: '1' });

    const patched = await core.patchNamespacedConfigMap(
      { namespace, name: 'settings', body: { data: { b: '2' } } },
      mergePatch,
    );
    expect(patched.data).toEqual({ a: '1', b: '2' });

    const list = await core.listNamespacedConfigMap({ namespace, labelSelector: 'app=crud' });
    expect(list.items.map((cm) => cm.metadata?.name)).toEqual(['settings']);

    await core.deleteNamespacedConfigMap({ namespace, name: 'settings' });
    await expect(core.readNamespacedConfigMap({ namespace, name: 'settings' })).rejects.toMatchObject({
      code: 404,
    });
  });

  it('enforces RBAC: a service account with no binding is forbidden, one with a binding is allowed', async () => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reader' } } });
    const token = await core.createNamespacedServiceAccountToken({
      namespace,
      name: 'reader',
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const asReader = new k8s.KubeConfig();
    asReader.loadFromOptions({
      clusters: [{ name: 'h', server: harness!.kubernetes.url, caFile: harness!.caFile }],
      users: [{ name: 'reader', token: token.status?.token }],
      contexts: [{ name: 'h', cluster: 'h', user: 'reader' }],
      currentContext: 'h',
    });
    const readerCore = asReader.makeApiClient(k8s.CoreV1Api);
    await expect(readerCore.listNamespacedConfigMap({ namespace })).rejects.toMatchObject({ code: 403 });

    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'cm-reader' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'cm-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
      },
    });
    const list = await readerCore.listNamespacedConfigMap({ namespace });
    expect(Array.isArray(list.items)).toBe(true);
    await expect(readerCore.listNamespacedSecret({ namespace })).rejects.toMatchObject({ code: 403 });
  });

  it('issues TokenRequest tokens for the Entra audience, signed by keys in the anonymous JWKS', async () => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'app' } } });
    const response = await core.createNamespacedServiceAccountToken({
      namespace,
      name: 'app',
      body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 3600 } },
    });
    const token = response.status?.token ?? '';
    const claims = decodeJwt(token);
    expect(claims.iss).toBe(harness!.kubernetes.issuer);
    expect(claims.sub).toBe(`system:serviceaccount:${namespace}:app`);
    expect(claims.aud).toEqual(['api://AzureADTokenExchange']);

    const discovery = await anonymousGet(
      `${harness!.kubernetes.issuer}/.well-known/openid-configuration`,
      harness!.caFile,
    );
    expect(discovery.status).toBe(200);
    expect(discovery.json.issuer).toBe(harness!.kubernetes.issuer);
    const jwks = await anonymousGet(String(discovery.json.jwks_uri), harness!.caFile);
    expect(jwks.status).toBe(200);
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as {
      kid: string;
    };
    const keys = (jwks.json.keys as Array<{ kid: string; alg: string }>) ?? [];
    expect(keys.find((k) => k.kid === header.kid)?.alg).toBe('RS256');
  });

  it('refuses anonymous access to anything but discovery', async () => {
    const res = await anonymousGet(`${harness!.kubernetes.url}/api/v1/namespaces`, harness!.caFile);
    expect(res.status).toBe(403);
  });
});
