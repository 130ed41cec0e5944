// The Helm chart, with the real helm CLI (hack/build-helm.sh): `helm template` with the default
// values and each ci/ values file, assertions that every value took effect, the values schema
// rejecting typos and wrong types, RBAC without wildcards, the chart's CRDs equal to crds/, and
// `helm install` into the harness kube-apiserver, where every rendered object must be accepted.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AZURE_WI_WEBHOOK_CONFIGURATION_NAME } from '../../src/api/constants.ts';
import { OPTIONS, parseConfig } from '../../src/config.ts';
import { adminKubeConfig, harnessInfo, uniqueName } from '../harness/context.ts';
import {
  CHART,
  findHelm,
  type HelmResult,
  helmTemplate,
  type ChartObject as Obj,
  REPO,
  runHelm,
} from '../harness/helm.ts';

const ciValues = (name: string) => join(CHART, 'ci', name);

const helmBin = findHelm();

// helm keeps a cache, config and data directory; this file's own, removed at the end.
const helmHome = mkdtempSync(join(tmpdir(), 'helm-home-'));
afterAll(() => rmSync(helmHome, { recursive: true, force: true }));

const helm = (args: string[], env: Record<string, string> = {}): HelmResult =>
  runHelm(helmBin.path!, helmHome, args, env);

interface RenderOptions {
  values?: string[];
  set?: string[];
  /** --set-string: values that must stay strings, e.g. "true" for a label. */
  setString?: string[];
  namespace?: string;
  release?: string;
}

function templateArgs({
  values = [],
  set = [],
  setString = [],
  namespace = 'entra-access-system',
  release = 'entra-access',
}: RenderOptions) {
  return [
    release,
    CHART,
    '--namespace',
    namespace,
    ...values.flatMap((file) => ['--values', file]),
    ...set.flatMap((s) => ['--set', s]),
    ...setString.flatMap((s) => ['--set-string', s]),
  ];
}

function render(options: RenderOptions = {}): Obj[] {
  return helmTemplate(helmBin.path!, helmHome, templateArgs(options));
}

function renderFails(options: RenderOptions): string {
  const result = helm(['template', ...templateArgs(options)]);
  expect(result.status, `helm template should fail; rendered:\n${result.stdout.slice(0, 500)}`).not.toBe(0);
  return result.stderr;
}

const ofKind = <T>(objects: Obj[], kind: string): T[] => objects.filter((o) => o.kind === kind) as T[];
function one<T>(objects: Obj[], kind: string): T {
  const found = ofKind<T>(objects, kind);
  expect(found, `exactly one ${kind}`).toHaveLength(1);
  return found[0]!;
}
/** The operator's own ClusterRole (the others aggregate app teams' rights into admin/edit/view). */
function operatorClusterRole(objects: Obj[]): k8s.V1ClusterRole {
  const found = ofKind<k8s.V1ClusterRole>(objects, 'ClusterRole').filter(
    (role) =>
      !role.metadata?.labels?.['rbac.authorization.k8s.io/aggregate-to-view'] &&
      !role.metadata?.labels?.['rbac.authorization.k8s.io/aggregate-to-edit'],
  );
  expect(found, 'exactly one operator ClusterRole').toHaveLength(1);
  return found[0]!;
}
const deploymentOf = (objects: Obj[]) => one<k8s.V1Deployment>(objects, 'Deployment');
const containerOf = (objects: Obj[]) => deploymentOf(objects).spec!.template.spec!.containers[0]!;
const argsOf = (objects: Obj[]) => containerOf(objects).args ?? [];
const flag = (args: string[], name: string) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const webhookConfigurationOf = (objects: Obj[]) =>
  one<k8s.V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
const webhookNamed = (objects: Obj[], name: string) =>
  webhookConfigurationOf(objects).webhooks!.find((w) => w.name === name)!;

/** The rendered flags parsed by the product's own config parser: an unknown flag fails here. */
function parsedConfig(objects: Obj[]) {
  return parseConfig(argsOf(objects), {});
}

/** Every (apiGroup, resource, verb, resourceName) a rule list grants, flattened and sorted. */
function grants(rules: k8s.V1PolicyRule[]): string[] {
  const out: string[] = [];
  for (const rule of rules) {
    for (const group of rule.apiGroups ?? [])
      for (const resource of rule.resources ?? [])
        for (const verb of rule.verbs)
          for (const name of rule.resourceNames?.length ? rule.resourceNames : ['']) {
            out.push(`${group}|${resource}|${verb}${name ? `|${name}` : ''}`);
          }
  }
  return out.sort();
}
const rbacKinds = ['ClusterRole', 'Role'];

describe.skipIf(!helmBin.path)(`helm chart${helmBin.reason ? ` (skipped: ${helmBin.reason})` : ''}`, () => {
  describe('default values', () => {
    const namespace = 'entra-access-system';
    let objects: Obj[];
    beforeAll(() => {
      objects = render({ namespace });
    });

    it('renders the expected objects and nothing for cert-manager or Prometheus', () => {
      const kinds = objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort();
      expect(kinds).toEqual(
        [
          'ClusterRole/entra-access',
          'ClusterRole/entra-access-edit',
          'ClusterRole/entra-access-view',
          'ClusterRoleBinding/entra-access',
          'Deployment/entra-access',
          'MutatingWebhookConfiguration/aks-entra-access',
          'PodDisruptionBudget/entra-access',
          'Role/entra-access',
          'Role/entra-access-leader-election',
          'RoleBinding/entra-access',
          'RoleBinding/entra-access-leader-election',
          'Service/entra-access-metrics',
          'Service/entra-access-webhook',
          'ServiceAccount/entra-access',
        ].sort(),
      );
      for (const o of objects) {
        if (
          o.kind === 'ClusterRole' ||
          o.kind === 'ClusterRoleBinding' ||
          o.kind === 'MutatingWebhookConfiguration'
        )
          continue;
        expect(o.metadata?.namespace, `${o.kind}/${o.metadata?.name}`).toBe(namespace);
      }
    });

    it('runs `entra-access run` with 2 replicas, the chart appVersion, ports and probes', () => {
      const deployment = deploymentOf(objects);
      expect(deployment.spec!.replicas).toBe(2);
      const pod = deployment.spec!.template.spec!;
      expect(pod.serviceAccountName).toBe('entra-access');
      const container = containerOf(objects);
      expect(container.image).toBe('ghcr.io/entra-access/entra-access:0.1.0');
      expect(container.command).toBeUndefined(); // the image's entrypoint is `entra-access run`
      expect(container.ports!.map((p) => [p.name, p.containerPort])).toEqual([
        ['webhook', 9443],
        ['metrics', 8080],
        ['health', 8081],
      ]);
      expect(container.livenessProbe!.httpGet).toMatchObject({ path: '/healthz', port: 'health' });
      expect(container.readinessProbe!.httpGet).toMatchObject({ path: '/readyz', port: 'health' });
      const args = argsOf(objects);
      expect(flag(args, 'namespace')).toBe(namespace);
      expect(flag(args, 'webhook-port')).toBe('9443');
      expect(flag(args, 'metrics-port')).toBe('8080');
      expect(flag(args, 'health-port')).toBe('8081');
      expect(flag(args, 'injection-mode')).toBe('auto');
      expect(flag(args, 'leader-elect')).toBe('true');
      expect(flag(args, 'leader-election-namespace')).toBe(namespace);
      expect(flag(args, 'leader-election-id')).toBe('entra-access-controller');
      expect(flag(args, 'leader-election-lease-duration')).toBe('15');
      expect(flag(args, 'leader-election-renew-deadline')).toBe('10');
      expect(flag(args, 'leader-election-retry-period')).toBe('2');
      expect(flag(args, 'azure-cloud')).toBe('AzurePublicCloud');
      expect(flag(args, 'cluster-name')).toBe('aks');
      expect(flag(args, 'tenant-id')).toBeUndefined();
      expect(flag(args, 'extra-pod-labels')).toBeUndefined();
    });

    it('passes only flags that exist (or the pending ones)', () => {
      for (const arg of argsOf(objects)) {
        expect(arg).toMatch(/^--[a-z-]+=/);
        const name = arg.slice(2).split('=')[0]!;
        expect(Object.keys(OPTIONS)).toContain(name);
      }
      // Without azure.oidcIssuerUrl the controller refuses to start; NOTES.txt says so.
      expect(() => parsedConfig(objects)).toThrow(/--oidc-issuer-url: required by the controller role/);
      const config = parsedConfig(
        render({ namespace, set: ['azure.oidcIssuerUrl=https://issuer.example/x/'] }),
      );
      expect(config.components).toEqual(['webhook', 'controller']);
      expect(config.namespace).toBe(namespace);
      expect(config.certDir).toBe('/tmp/k8s-webhook-server/serving-certs');
      expect(config.controller.oidcIssuerUrl).toBe('https://issuer.example/x/');
    });

    it('runs non-root with a read-only root filesystem, no capabilities and RuntimeDefault seccomp', () => {
      const pod = deploymentOf(objects).spec!.template.spec!;
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(containerOf(objects).securityContext).toEqual({
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      const mounts = containerOf(objects).volumeMounts!;
      const tmp = mounts.find((m) => m.mountPath === '/tmp')!;
      expect(pod.volumes!.find((v) => v.name === tmp.name)!.emptyDir).toBeDefined();
    });

    it('passes the self-managed certificate flags and gives --cert-dir a writable in-memory volume', () => {
      const args = argsOf(objects);
      expect(flag(args, 'cert-mode')).toBe('self');
      expect(flag(args, 'cert-secret-name')).toBe('entra-access-webhook-tls');
      expect(flag(args, 'webhook-configuration-name')).toBe('aks-entra-access');
      expect(flag(args, 'webhook-service-name')).toBe('entra-access-webhook');
      expect(flag(args, 'ca-validity')).toBe('8760h');
      expect(flag(args, 'cert-validity')).toBe('2160h');
      expect(flag(args, 'cert-renew-before')).toBe('720h');
      // Mode self: the operator writes the pair from its Secret into --cert-dir itself.
      const mount = containerOf(objects).volumeMounts!.find((m) => m.mountPath === flag(args, 'cert-dir'))!;
      expect(mount.readOnly).toBe(false);
      const volume = deploymentOf(objects).spec!.template.spec!.volumes!.find((v) => v.name === mount.name)!;
      expect(volume.emptyDir).toMatchObject({ medium: 'Memory' });
      expect(volume.secret).toBeUndefined();
    });

    it('configures the webhooks as DESIGN §4 says, sorted before the AKS add-on', () => {
      const configuration = webhookConfigurationOf(objects);
      const name = configuration.metadata!.name!;
      expect(name).toBe('aks-entra-access');
      expect([AZURE_WI_WEBHOOK_CONFIGURATION_NAME, name].sort()[0]).toBe(name);
      expect(configuration.metadata!.annotations?.['cert-manager.io/inject-ca-from']).toBeUndefined();
      const paths = {
        'pods.entra-access.io': ['/mutate-v1-pod', 'pods', ['CREATE'], 'Fail', true],
        'serviceaccounts.entra-access.io': [
          '/mutate-v1-serviceaccount',
          'serviceaccounts',
          ['CREATE', 'UPDATE'],
          'Ignore',
          true,
        ],
        'namespaces.entra-access.io': [
          '/mutate-v1-namespace',
          'namespaces',
          ['CREATE', 'UPDATE'],
          'Ignore',
          false,
        ],
      } as const;
      expect(configuration.webhooks!.map((w) => w.name)).toEqual(Object.keys(paths));
      for (const webhook of configuration.webhooks!) {
        const [path, resource, operations, failurePolicy, optIn] = paths[webhook.name as keyof typeof paths];
        expect(webhook.clientConfig.service).toEqual({
          name: 'entra-access-webhook',
          namespace,
          path,
          port: 443,
        });
        expect(webhook.clientConfig.caBundle).toBeUndefined(); // mode self: the operator patches it in
        expect(webhook.rules).toEqual([
          expect.objectContaining({
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: [resource],
            operations,
          }),
        ]);
        expect(webhook.failurePolicy).toBe(failurePolicy);
        expect(webhook.sideEffects).toBe('NoneOnDryRun');
        expect(webhook.reinvocationPolicy).toBe('IfNeeded');
        expect(webhook.admissionReviewVersions).toEqual(['v1']);
        expect(webhook.timeoutSeconds).toBe(5);
        expect(webhook.namespaceSelector!.matchExpressions).toEqual([
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', namespace] },
        ]);
        expect(webhook.namespaceSelector!.matchLabels).toEqual(
          optIn ? { 'entra-access.io/workload-identity': 'enabled' } : undefined,
        );
      }
    });

    it('serves the webhook Service on 443 and selects the Deployment pods; a PDB keeps one up', () => {
      const services = ofKind<k8s.V1Service>(objects, 'Service');
      const selector = deploymentOf(objects).spec!.selector.matchLabels;
      const webhook = services.find((s) => s.metadata!.name === 'entra-access-webhook')!;
      expect(webhook.spec!.ports).toEqual([
        { name: 'https', port: 443, targetPort: 'webhook', protocol: 'TCP' },
      ]);
      expect(webhook.spec!.selector).toEqual(selector);
      const metrics = services.find((s) => s.metadata!.name === 'entra-access-metrics')!;
      expect(metrics.spec!.ports![0]).toMatchObject({ port: 8080, targetPort: 'metrics' });
      const pdb = one<k8s.V1PodDisruptionBudget>(objects, 'PodDisruptionBudget');
      expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: selector } });
    });

    it('grants exactly what the code calls, with no wildcard', () => {
      for (const kind of rbacKinds)
        for (const role of ofKind<k8s.V1ClusterRole>(objects, kind))
          expect(JSON.stringify(role.rules), `${kind}/${role.metadata?.name}`).not.toContain('*');
      const clusterRole = operatorClusterRole(objects);
      expect(grants(clusterRole.rules!)).toEqual(
        [
          '|namespaces|get',
          '|namespaces|list',
          '|namespaces|watch',
          '|namespaces|patch',
          '|serviceaccounts|get',
          '|serviceaccounts|list',
          '|serviceaccounts|watch',
          '|serviceaccounts|create',
          '|serviceaccounts|patch',
          '|events|create',
          'entra-access.io|entradatabaseaccesses|get',
          'entra-access.io|entradatabaseaccesses|list',
          'entra-access.io|entradatabaseaccesses|watch',
          'entra-access.io|entradatabaseaccesses|patch',
          'entra-access.io|entradatabaseaccesses/status|patch',
          'entra-access.io|entradatabaseservers|get',
          'entra-access.io|entradatabaseservers|list',
          'entra-access.io|entradatabaseservers|watch',
          'entra-access.io|entradatabaseservers/status|patch',
          `admissionregistration.k8s.io|mutatingwebhookconfigurations|get|${AZURE_WI_WEBHOOK_CONFIGURATION_NAME}`,
          'admissionregistration.k8s.io|mutatingwebhookconfigurations|get|aks-entra-access',
          'admissionregistration.k8s.io|mutatingwebhookconfigurations|watch|aks-entra-access',
          'admissionregistration.k8s.io|mutatingwebhookconfigurations|patch|aks-entra-access',
        ].sort(),
      );
      const roles = ofKind<k8s.V1Role>(objects, 'Role');
      const secrets = roles.find((r) => r.metadata!.name === 'entra-access')!;
      expect(secrets.metadata!.namespace).toBe(namespace);
      expect(grants(secrets.rules!)).toEqual(
        [
          '|secrets|get',
          '|secrets|create',
          '|secrets|get|entra-access-webhook-tls',
          '|secrets|watch|entra-access-webhook-tls',
          '|secrets|update|entra-access-webhook-tls',
        ].sort(),
      );
      const leases = roles.find((r) => r.metadata!.name === 'entra-access-leader-election')!;
      expect(leases.metadata!.namespace).toBe(namespace);
      expect(grants(leases.rules!)).toEqual(
        [
          'coordination.k8s.io|leases|create',
          'coordination.k8s.io|leases|get|entra-access-controller',
          'coordination.k8s.io|leases|update|entra-access-controller',
        ].sort(),
      );
      for (const kind of ['ClusterRoleBinding', 'RoleBinding'])
        for (const binding of ofKind<k8s.V1RoleBinding>(objects, kind))
          expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'entra-access', namespace }]);
    });

    it("aggregates app teams' rights into admin/edit/view: access resources only, never status", () => {
      const byName = (name: string) =>
        ofKind<k8s.V1ClusterRole>(objects, 'ClusterRole').find((r) => r.metadata?.name === name)!;
      const edit = byName('entra-access-edit');
      expect(edit.metadata?.labels).toMatchObject({
        'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
        'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
      });
      expect(grants(edit.rules!)).toEqual(
        ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'].map(
          (verb) => `entra-access.io|entradatabaseaccesses|${verb}`,
        ),
      );
      const view = byName('entra-access-view');
      expect(view.metadata?.labels).toMatchObject({ 'rbac.authorization.k8s.io/aggregate-to-view': 'true' });
      expect(grants(view.rules!)).toEqual(
        ['get', 'list', 'watch'].map((verb) => `entra-access.io|entradatabaseaccesses|${verb}`),
      );
      const off = render({ set: ['rbac.aggregateToDefaultRoles=false'] });
      expect(ofKind<k8s.V1ClusterRole>(off, 'ClusterRole').map((r) => r.metadata?.name)).toEqual([
        'entra-access',
      ]);
    });

    it('sets the ServiceAccount name and workload-identity annotations from values', () => {
      const rendered = render({
        set: [
          'serviceAccount.name=operator',
          'serviceAccount.annotations.azure\\.workload\\.identity/client-id=00000000-1111-2222-3333-444444444444',
          'leaderElection.namespace=kube-system',
        ],
      });
      const sa = one<k8s.V1ServiceAccount>(rendered, 'ServiceAccount');
      expect(sa.metadata!.name).toBe('operator');
      expect(sa.metadata!.annotations).toEqual({
        'azure.workload.identity/client-id': '00000000-1111-2222-3333-444444444444',
      });
      expect(deploymentOf(rendered).spec!.template.spec!.serviceAccountName).toBe('operator');
      const leases = ofKind<k8s.V1Role>(rendered, 'Role').find((r) =>
        r.metadata!.name?.endsWith('-leader-election'),
      )!;
      expect(leases.metadata!.namespace).toBe('kube-system');
      expect(flag(argsOf(rendered), 'leader-election-namespace')).toBe('kube-system');
    });
  });

  describe('ci/certmanager-values.yaml', () => {
    const namespace = 'security';
    let objects: Obj[];
    beforeAll(() => {
      objects = render({ values: [ciValues('certmanager-values.yaml')], namespace });
    });

    it('renders a self-signed CA chain and a serving Certificate for the Service DNS names', () => {
      const issuers = ofKind<Obj>(objects, 'Issuer');
      expect(issuers.map((i) => i.metadata!.name).sort()).toEqual([
        'entra-access-ca',
        'entra-access-selfsigned',
      ]);
      expect(issuers.every((i) => i.apiVersion === 'cert-manager.io/v1')).toBe(true);
      const certificates = ofKind<Obj & { spec: Record<string, unknown> }>(objects, 'Certificate');
      const ca = certificates.find((c) => c.metadata!.name === 'entra-access-ca')!;
      expect(ca.spec).toMatchObject({
        isCA: true,
        issuerRef: { kind: 'Issuer', name: 'entra-access-selfsigned' },
      });
      const serving = certificates.find((c) => c.metadata!.name === 'entra-access-webhook')!;
      expect(serving.spec).toMatchObject({
        secretName: 'entra-access-webhook-tls',
        issuerRef: { kind: 'Issuer', name: 'entra-access-ca' },
        duration: '720h',
        renewBefore: '240h',
      });
      expect(serving.spec.dnsNames).toContain(`entra-access-webhook.${namespace}.svc`);
      expect(serving.spec.dnsNames).toContain(`entra-access-webhook.${namespace}.svc.cluster.local`);
    });

    it('annotates the webhook configuration for cainjector and runs with --cert-mode=external', () => {
      expect(webhookConfigurationOf(objects).metadata!.annotations).toEqual({
        'cert-manager.io/inject-ca-from': `${namespace}/entra-access-webhook`,
      });
      const args = argsOf(objects);
      expect(flag(args, 'cert-mode')).toBe('external');
      for (const name of ['cert-secret-name', 'webhook-configuration-name', 'webhook-service-name'])
        expect(flag(args, name)).toBeUndefined();
      const volume = deploymentOf(objects).spec!.template.spec!.volumes!.find((v) => v.secret)!;
      expect(volume.secret!.secretName).toBe('entra-access-webhook-tls');
      expect(volume.secret!.optional).toBeUndefined();
      expect(parsedConfig(objects).controller.oidcIssuerUrl).toMatch(/^https:\/\/eastus\.oic\.prod-aks/);
    });

    it('drops the self-mode permissions: no Secret writes, no webhook configuration patch', () => {
      const clusterRole = operatorClusterRole(objects);
      expect(grants(clusterRole.rules!).filter((g) => g.startsWith('admissionregistration'))).toEqual([
        `admissionregistration.k8s.io|mutatingwebhookconfigurations|get|${AZURE_WI_WEBHOOK_CONFIGURATION_NAME}`,
      ]);
      const role = ofKind<k8s.V1Role>(objects, 'Role').find((r) => r.metadata!.name === 'entra-access')!;
      expect(grants(role.rules!)).toEqual(['|secrets|get']);
    });

    it('renders a ServiceMonitor for the metrics Service', () => {
      const monitor = one<Obj & { spec: { endpoints: unknown[]; selector: unknown } }>(
        objects,
        'ServiceMonitor',
      );
      expect(monitor.metadata!.labels).toMatchObject({ release: 'prometheus' });
      expect(monitor.spec.endpoints).toEqual([
        { port: 'metrics', path: '/metrics', scheme: 'http', interval: '30s' },
      ]);
      const metrics = ofKind<k8s.V1Service>(objects, 'Service').find(
        (s) => s.metadata!.name === 'entra-access-metrics',
      )!;
      const selector = (monitor.spec.selector as { matchLabels: Record<string, string> }).matchLabels;
      for (const [key, value] of Object.entries(selector)) expect(metrics.metadata!.labels![key]).toBe(value);
    });
  });

  describe('ci/inject-mode-values.yaml', () => {
    let objects: Obj[];
    beforeAll(() => {
      objects = render({ values: [ciValues('inject-mode-values.yaml')] });
    });

    it('passes the injection mode, extra pod labels and Azure settings, and the parser accepts them', () => {
      const args = argsOf(objects);
      expect(flag(args, 'injection-mode')).toBe('inject');
      expect(flag(args, 'extra-pod-labels')).toBe('cost-center=42,team=platform');
      expect(flag(args, 'tenant-id')).toBe('72f988bf-86f1-41af-91ab-2d7cd011db47');
      expect(flag(args, 'azure-cloud')).toBe('AzureUSGovernment');
      expect(flag(args, 'cluster-name')).toBe('gov-east');
      expect(flag(args, 'leader-election-id')).toBe('entra-access-leader');
      const config = parsedConfig(objects);
      expect(config.injectionMode).toBe('inject');
      expect(config.extraPodLabels).toEqual({ team: 'platform', 'cost-center': '42' });
      expect(config.tenantId).toBe('72f988bf-86f1-41af-91ab-2d7cd011db47');
      expect(config.authorityHost).toBe('https://login.microsoftonline.us/');
      expect(config.controller.oidcIssuerUrl).toMatch(/^https:\/\/usgovvirginia\./);
      expect(config.controller.clusterName).toBe('gov-east');
      expect(config.controller.leaderElectionId).toBe('entra-access-leader');
      expect(config.metricsPort).toBe(0);
    });

    it('applies replicas, the Pod failurePolicy, timeouts, PDB and metrics off', () => {
      expect(deploymentOf(objects).spec!.replicas).toBe(3);
      expect(webhookNamed(objects, 'pods.entra-access.io').failurePolicy).toBe('Ignore');
      for (const webhook of webhookConfigurationOf(objects).webhooks!) expect(webhook.timeoutSeconds).toBe(3);
      const pdb = one<k8s.V1PodDisruptionBudget>(objects, 'PodDisruptionBudget');
      expect(pdb.spec!.minAvailable).toBe(2);
      expect(pdb.spec!.maxUnavailable).toBeUndefined();
      expect(ofKind(objects, 'Service').map((s) => (s as k8s.V1Service).metadata!.name)).toEqual([
        'entra-access-webhook',
      ]);
      expect(containerOf(objects).ports!.map((p) => p.name)).toEqual(['webhook', 'health']);
      expect(ofKind(objects, 'ServiceMonitor')).toEqual([]);
    });

    it('keeps the Namespace and ServiceAccount webhooks at Ignore whatever the Pod policy', () => {
      const rendered = render({ set: ['webhook.failurePolicy=Fail'] });
      expect(webhookNamed(rendered, 'pods.entra-access.io').failurePolicy).toBe('Fail');
      expect(webhookNamed(rendered, 'serviceaccounts.entra-access.io').failurePolicy).toBe('Ignore');
      expect(webhookNamed(rendered, 'namespaces.entra-access.io').failurePolicy).toBe('Ignore');
    });
  });

  describe('ci/existing-serviceaccount-values.yaml', () => {
    const namespace = 'platform';
    let objects: Obj[];
    beforeAll(() => {
      objects = render({ values: [ciValues('existing-serviceaccount-values.yaml')], namespace });
    });

    it('creates no ServiceAccount and binds the named one', () => {
      expect(ofKind(objects, 'ServiceAccount')).toEqual([]);
      expect(deploymentOf(objects).spec!.template.spec!.serviceAccountName).toBe('platform-entra-access');
      for (const kind of ['ClusterRoleBinding', 'RoleBinding'])
        for (const binding of ofKind<k8s.V1RoleBinding>(objects, kind))
          expect(binding.subjects).toEqual([
            { kind: 'ServiceAccount', name: 'platform-entra-access', namespace },
          ]);
    });

    it('puts extraPodLabels and podLabels on the pod template, not in the selector', () => {
      const deployment = deploymentOf(objects);
      const template = deployment.spec!.template.metadata!;
      expect(template.labels).toMatchObject({
        'azure.workload.identity/use': 'true',
        team: 'platform',
        'app.kubernetes.io/name': 'entra-access',
      });
      expect(deployment.spec!.selector.matchLabels).toEqual({
        'app.kubernetes.io/name': 'entra-access',
        'app.kubernetes.io/instance': 'entra-access',
      });
      expect(template.annotations).toEqual({ 'example.com/owner': 'platform' });
    });

    it('applies scheduling values, drops the PDB and narrows Secret reads to the named ones', () => {
      const pod = deploymentOf(objects).spec!.template.spec!;
      expect(pod.priorityClassName).toBe('system-cluster-critical');
      expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
      expect(pod.tolerations).toEqual([{ key: 'CriticalAddonsOnly', operator: 'Exists' }]);
      expect(pod.topologySpreadConstraints![0]).toMatchObject({ topologyKey: 'topology.kubernetes.io/zone' });
      expect(ofKind(objects, 'PodDisruptionBudget')).toEqual([]);
      const role = ofKind<k8s.V1Role>(objects, 'Role').find((r) => r.metadata!.name === 'entra-access')!;
      expect(grants(role.rules!).filter((g) => g.includes('|get'))).toEqual([
        '|secrets|get|entra-access-webhook-tls',
        '|secrets|get|pg-ca',
      ]);
      expect(parsedConfig(objects).tenantId).toBe('72f988bf-86f1-41af-91ab-2d7cd011db47');
    });

    it('requires a name when the chart does not create the ServiceAccount', () => {
      expect(renderFails({ set: ['serviceAccount.create=false'] })).toMatch(
        /serviceAccount\.name is required/,
      );
    });
  });

  describe('values schema and guards', () => {
    it('rejects a typo', () => {
      expect(renderFails({ set: ['webhook.timeoutSecond=3'] })).toMatch(/timeoutSecond/);
      expect(renderFails({ set: ['replicas=3'] })).toMatch(/replicas/);
    });
    it('rejects wrong types and out-of-range values', () => {
      expect(renderFails({ set: ['replicaCount=two'] })).toMatch(/replicaCount/);
      expect(renderFails({ set: ['webhook.timeoutSeconds=10'] })).toMatch(/timeoutSeconds/);
      expect(renderFails({ set: ['webhook.failurePolicy=Sometimes'] })).toMatch(/failurePolicy/);
      expect(renderFails({ set: ['webhook.injectionMode=sidecar'] })).toMatch(/injectionMode/);
      expect(renderFails({ set: ['certificates.mode=vault'] })).toMatch(/mode/);
      expect(renderFails({ set: ['azure.cloud=AzureGermanCloud'] })).toMatch(/cloud/);
      expect(renderFails({ set: ['azure.tenantId=not-a-guid'] })).toMatch(/tenantId/);
      expect(renderFails({ set: ['azure.oidcIssuerUrl=http://insecure.example/'] })).toMatch(/oidcIssuerUrl/);
    });
    it('refuses a configuration name that sorts after the AKS add-on and a controller per replica', () => {
      expect(renderFails({ set: ['webhook.configurationName=entra-access'] })).toMatch(/must sort before/);
      expect(renderFails({ set: ['leaderElection.enabled=false'] })).toMatch(/replicaCount 1/);
      expect(renderFails({ set: ['leaderElection.renewDeadline=20'] })).toMatch(
        /retryPeriod < renewDeadline < leaseDuration/,
      );
      expect(
        flag(argsOf(render({ set: ['leaderElection.enabled=false', 'replicaCount=1'] })), 'leader-elect'),
      ).toBe('false');
    });
    it('ANDs webhook.namespaceSelector onto every webhook', () => {
      const rendered = render({
        set: [
          'webhook.namespaceSelector.matchLabels.tier=apps',
          'webhook.namespaceSelector.matchExpressions[0].key=kubernetes.io/metadata.name',
          'webhook.namespaceSelector.matchExpressions[0].operator=NotIn',
          'webhook.namespaceSelector.matchExpressions[0].values[0]=kube-public',
        ],
      });
      for (const webhook of webhookConfigurationOf(rendered).webhooks!) {
        expect(webhook.namespaceSelector!.matchLabels!.tier).toBe('apps');
        expect(webhook.namespaceSelector!.matchExpressions).toEqual([
          {
            key: 'kubernetes.io/metadata.name',
            operator: 'NotIn',
            values: ['kube-system', 'entra-access-system'],
          },
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-public'] },
        ]);
      }
    });
  });

  it('lints with --strict, with the default values and every ci/ values file', () => {
    const files = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const values of [[], ...files.map((f) => ['--values', ciValues(f)])]) {
      const result = helm(['lint', '--strict', CHART, ...values]);
      expect(result.status, `${values.join(' ')}\n${result.stdout}${result.stderr}`).toBe(0);
    }
  });

  it('ships exactly the CRDs in crds/ (run `make sync-chart-crds` after changing them)', () => {
    const source = readdirSync(join(REPO, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    const shipped = readdirSync(join(CHART, 'crds')).sort();
    expect(shipped).toEqual(source);
    for (const file of source) {
      expect(readFileSync(join(CHART, 'crds', file), 'utf8'), `charts/entra-access/crds/${file}`).toBe(
        readFileSync(join(REPO, 'crds', file), 'utf8'),
      );
    }
  });

  const harness = harnessInfo();
  describe.skipIf(!harness)('helm install into the harness kube-apiserver', () => {
    const suffix = uniqueName('h').slice(2);
    const namespace = `helm-${suffix}`;
    const release = `entra-access-${suffix}`;
    const kubeconfig = { KUBECONFIG: harness?.kubernetes.kubeconfigPath ?? '' };
    let kc: k8s.KubeConfig;
    let installed = false;
    const options: RenderOptions = {
      namespace,
      release,
      set: [
        'azure.oidcIssuerUrl=https://issuer.example/cluster/',
        // Cluster-scoped names unique to this run, and webhooks that match no other test's
        // namespace (nothing serves them here: there is no kubelet).
        `webhook.configurationName=aks-entra-access-${suffix}`,
        `webhook.namespaceSelector.matchLabels.entra-access-helm-test=${suffix}`,
        `serviceAccount.annotations.azure\\.workload\\.identity/client-id=00000000-1111-2222-3333-444444444444`,
      ],
      setString: ['extraPodLabels.azure\\.workload\\.identity/use=true'],
    };

    beforeAll(async () => {
      kc = adminKubeConfig(harness!);
      await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
    });
    afterAll(async () => {
      if (installed) helm(['uninstall', release, '--namespace', namespace], kubeconfig);
      await kc
        ?.makeApiClient(k8s.CoreV1Api)
        .deleteNamespace({ name: namespace })
        .catch(() => {});
    });

    it('installs, every rendered object is in the apiserver, and uninstall removes them', async () => {
      const objects = render(options);
      const result = helm(
        ['install', ...templateArgs(options), '--wait=hookOnly', '--timeout', '60s'],
        kubeconfig,
      );
      expect(result.status, result.stderr).toBe(0);
      installed = true;
      expect(result.stdout).toContain('entra-access.io/workload-identity=enabled');

      const api = k8s.KubernetesObjectApi.makeApiClient(kc);
      const ref = (o: Obj) => ({
        apiVersion: o.apiVersion!,
        kind: o.kind!,
        metadata: {
          name: o.metadata!.name!,
          ...(o.metadata!.namespace ? { namespace: o.metadata!.namespace } : {}),
        },
      });
      expect(objects.length).toBeGreaterThanOrEqual(12);
      for (const object of objects) {
        const stored = await api.read(ref(object));
        expect(
          stored.metadata?.labels?.['app.kubernetes.io/instance'],
          `${object.kind}/${object.metadata?.name}`,
        ).toBe(release);
      }
      // The CRDs from the chart's crds/ are in place (the harness applied the same files first).
      const crds = kc.makeApiClient(k8s.ApiextensionsV1Api);
      for (const name of ['entradatabaseaccesses.entra-access.io', 'entradatabaseservers.entra-access.io'])
        expect((await crds.readCustomResourceDefinition({ name })).metadata?.name).toBe(name);

      const uninstall = helm(['uninstall', release, '--namespace', namespace], kubeconfig);
      expect(uninstall.status, uninstall.stderr).toBe(0);
      installed = false;
      for (const object of objects) {
        await expect(api.read(ref(object)), `${object.kind}/${object.metadata?.name}`).rejects.toMatchObject({
          code: 404,
        });
      }
    });

    it('the rendered RBAC allows every call the code makes, and not more', async () => {
      const result = helm(
        ['install', ...templateArgs(options), '--wait=hookOnly', '--timeout', '60s'],
        kubeconfig,
      );
      expect(result.status, result.stderr).toBe(0);
      installed = true;
      const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
      const user = `system:serviceaccount:${namespace}:${release}`;
      const can = async (attributes: k8s.V1ResourceAttributes): Promise<boolean> => {
        const review = await authz.createSubjectAccessReview({
          body: {
            spec: {
              user,
              groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`],
              resourceAttributes: attributes,
            },
          },
        });
        return review.status?.allowed === true;
      };
      const configuration = `aks-entra-access-${suffix}`;
      const allowed: k8s.V1ResourceAttributes[] = [
        ...['get', 'list', 'watch', 'patch'].map((verb) => ({ verb, resource: 'namespaces', name: 'apps' })),
        ...['get', 'list', 'watch'].map((verb) => ({ verb, resource: 'serviceaccounts' })),
        ...['get', 'create', 'patch'].map((verb) => ({
          verb,
          resource: 'serviceaccounts',
          namespace: 'apps',
        })),
        { verb: 'create', resource: 'events', namespace: 'apps' },
        { verb: 'create', resource: 'events', namespace: 'default' },
        ...['list', 'watch'].map((verb) => ({
          verb,
          group: 'entra-access.io',
          resource: 'entradatabaseaccesses',
        })),
        ...['get', 'patch'].map((verb) => ({
          verb,
          group: 'entra-access.io',
          resource: 'entradatabaseaccesses',
          namespace: 'apps',
          name: 'a',
        })),
        {
          verb: 'patch',
          group: 'entra-access.io',
          resource: 'entradatabaseaccesses',
          subresource: 'status',
          namespace: 'apps',
          name: 'a',
        },
        ...['get', 'list', 'watch'].map((verb) => ({
          verb,
          group: 'entra-access.io',
          resource: 'entradatabaseservers',
        })),
        {
          verb: 'patch',
          group: 'entra-access.io',
          resource: 'entradatabaseservers',
          subresource: 'status',
          name: 's',
        },
        {
          verb: 'get',
          group: 'admissionregistration.k8s.io',
          resource: 'mutatingwebhookconfigurations',
          name: AZURE_WI_WEBHOOK_CONFIGURATION_NAME,
        },
        ...['get', 'watch', 'patch'].map((verb) => ({
          verb,
          group: 'admissionregistration.k8s.io',
          resource: 'mutatingwebhookconfigurations',
          name: configuration,
        })),
        { verb: 'get', resource: 'secrets', namespace, name: 'pg-ca' },
        { verb: 'create', resource: 'secrets', namespace },
        ...['get', 'watch', 'update'].map((verb) => ({
          verb,
          resource: 'secrets',
          namespace,
          name: `${release}-webhook-tls`,
        })),
        { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace },
        ...['get', 'update'].map((verb) => ({
          verb,
          group: 'coordination.k8s.io',
          resource: 'leases',
          namespace,
          name: `${release}-controller`,
        })),
      ];
      const denied: k8s.V1ResourceAttributes[] = [
        { verb: 'get', resource: 'secrets', namespace: 'default', name: 'pg-ca' },
        { verb: 'list', resource: 'secrets', namespace },
        { verb: 'watch', resource: 'secrets', namespace },
        { verb: 'list', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
        { verb: 'update', resource: 'secrets', namespace, name: 'someone-else' },
        { verb: 'delete', resource: 'namespaces', name: 'apps' },
        { verb: 'update', resource: 'serviceaccounts', namespace: 'apps', name: 'app' },
        {
          verb: 'delete',
          group: 'entra-access.io',
          resource: 'entradatabaseaccesses',
          namespace: 'apps',
          name: 'a',
        },
        { verb: 'update', group: 'entra-access.io', resource: 'entradatabaseservers', name: 's' },
        {
          verb: 'patch',
          group: 'admissionregistration.k8s.io',
          resource: 'mutatingwebhookconfigurations',
          name: 'other',
        },
        { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace, name: 'other' },
        { verb: 'create', resource: 'pods', namespace: 'apps' },
      ];
      for (const attributes of allowed) expect(await can(attributes), JSON.stringify(attributes)).toBe(true);
      for (const attributes of denied) expect(await can(attributes), JSON.stringify(attributes)).toBe(false);
    });
  });
});
