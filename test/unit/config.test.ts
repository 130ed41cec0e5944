import { describe, expect, it } from 'vitest';
import { ConfigError, envName, parseConfig, usage } from '../../src/config.ts';

const ISSUER = '--oidc-issuer-url=https://westeurope.oic.prod-aks.azure.com/tenant/cluster/';

describe('parseConfig', () => {
  it('has the controller-runtime defaults, and runs both roles unless told otherwise', () => {
    const config = parseConfig([ISSUER], {});
    expect(config).toMatchObject({
      roles: ['webhook', 'controller'],
      namespace: 'entra-access-system',
      webhookPort: 9443,
      metricsPort: 8080,
      healthPort: 8081,
      certDir: '/tmp/k8s-webhook-server/serving-certs',
      injectionMode: 'auto',
      azureCloud: 'AzurePublicCloud',
      authorityHost: 'https://login.microsoftonline.com/',
      extraPodLabels: {},
      tenantId: '',
    });
    expect(config.kubeconfig).toBeUndefined();
    expect(config.controller).toMatchObject({
      clusterName: 'aks',
      leaderElect: true,
      leaderElectionNamespace: 'entra-access-system',
      leaderElectionId: 'entra-access-controller',
      maxConcurrentReconciles: 4,
      resyncPeriodSeconds: 600,
    });
  });

  it('runs only the roles asked for', () => {
    expect(parseConfig(['--webhook'], {}).roles).toEqual(['webhook']);
    expect(parseConfig(['--controller', ISSUER], {}).roles).toEqual(['controller']);
    expect(parseConfig([], { ENTRA_ACCESS_WEBHOOK: 'true' }).roles).toEqual(['webhook']);
  });

  it('takes flags over environment over defaults', () => {
    const env = { ENTRA_ACCESS_WEBHOOK_PORT: '10443', ENTRA_ACCESS_INJECTION_MODE: 'inject' };
    expect(parseConfig(['--webhook'], env)).toMatchObject({ webhookPort: 10443, injectionMode: 'inject' });
    expect(parseConfig(['--webhook', '--webhook-port=11443'], env)).toMatchObject({
      webhookPort: 11443,
      injectionMode: 'inject',
    });
  });

  it('reads --kubeconfig, else KUBECONFIG', () => {
    expect(parseConfig(['--webhook', '--kubeconfig', '/a'], { KUBECONFIG: '/b' }).kubeconfig).toBe('/a');
    expect(parseConfig(['--webhook'], { KUBECONFIG: '/b' }).kubeconfig).toBe('/b');
  });

  it('derives the authority host from the cloud, and lets a flag override it', () => {
    expect(parseConfig(['--webhook', '--azure-cloud', 'AzureUSGovernment'], {}).authorityHost).toBe(
      'https://login.microsoftonline.us/',
    );
    expect(parseConfig(['--webhook', '--azure-cloud', 'AzureChinaCloud'], {}).authorityHost).toBe(
      'https://login.chinacloudapi.cn/',
    );
    expect(parseConfig(['--webhook', '--authority-host', 'https://login.example'], {}).authorityHost).toBe(
      'https://login.example/',
    );
  });

  it('parses extra pod labels', () => {
    expect(
      parseConfig(['--webhook', '--extra-pod-labels', 'team=payments,tier=backend'], {}).extraPodLabels,
    ).toEqual({
      team: 'payments',
      tier: 'backend',
    });
  });

  it.each([
    [['--webhook-port', 'abc'], {}, /--webhook-port: expected an integer from 1 to 65535, got "abc"/],
    [
      [],
      { ENTRA_ACCESS_WEBHOOK_PORT: '70000' },
      /--webhook-port \(from ENTRA_ACCESS_WEBHOOK_PORT\): expected an integer/,
    ],
    [
      ['--injection-mode', 'sidecar'],
      {},
      /--injection-mode: expected one of auto, label, inject, got "sidecar"/,
    ],
    [['--azure-cloud', 'Mars'], {}, /--azure-cloud: expected one of AzurePublicCloud/],
    [['--tenant-id', 'contoso'], {}, /--tenant-id: expected the Entra tenant ID as a GUID/],
    [['--authority-host', 'http://login.example'], {}, /--authority-host: expected an https URL/],
    [['--extra-pod-labels', 'bad key=x'], {}, /--extra-pod-labels: .*bad key/],
    [['--namespace', 'Not_A_Namespace'], {}, /--namespace: "Not_A_Namespace" is not a valid namespace name/],
    [['--log-level', 'chatty'], {}, /--log-level: expected one of debug, info, warn, error/],
    [['--no-such-flag'], {}, /no-such-flag/],
    [['--controller'], {}, /--oidc-issuer-url: required by the controller role/],
    [['--controller', '--oidc-issuer-url=http://issuer'], {}, /--oidc-issuer-url: expected an https URL/],
    [['--leader-elect=maybe'], {}, /--leader-elect: expected true or false/],
    [['--cluster-name=Prod_1'], {}, /--cluster-name: expected a DNS label/],
    [
      ['--postgres-token-scope=https://x'],
      {},
      /--postgres-token-scope: expected an https scope ending in \/.default/,
    ],
    [
      [],
      { ENTRA_ACCESS_WEBHOOK: 'maybe' },
      /--webhook \(from ENTRA_ACCESS_WEBHOOK\): expected true or false/,
    ],
  ] as const)('refuses %j %j naming the flag', (argv, env, message) => {
    // The controller needs an issuer; give it one unless the case is about that flag.
    const args = argv.some((a) => a.startsWith('--oidc') || a === '--controller')
      ? [...argv]
      : [...argv, ISSUER];
    expect(() => parseConfig(args, { ...env })).toThrow(ConfigError);
    expect(() => parseConfig(args, { ...env })).toThrow(message);
  });

  it('documents every flag with its environment variable', () => {
    const text = usage();
    for (const flag of [
      'webhook-port',
      'cert-dir',
      'injection-mode',
      'tenant-id',
      'azure-cloud',
      'authority-host',
    ]) {
      expect(text).toContain(`--${flag}`);
      expect(text).toContain(envName(flag));
    }
  });
});
