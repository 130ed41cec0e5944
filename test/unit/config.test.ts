import { describe, expect, it } from 'vitest';
import { ConfigError, envName, parseConfig, usage } from '../../src/config.ts';

describe('parseConfig', () => {
  it('has the controller-runtime defaults', () => {
    const config = parseConfig([], {});
    expect(config).toMatchObject({
      roles: ['webhook'],
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
  });

  it('takes flags over environment over defaults', () => {
    const env = { ENTRA_ACCESS_WEBHOOK_PORT: '10443', ENTRA_ACCESS_INJECTION_MODE: 'inject' };
    expect(parseConfig([], env)).toMatchObject({ webhookPort: 10443, injectionMode: 'inject' });
    expect(parseConfig(['--webhook-port=11443'], env)).toMatchObject({
      webhookPort: 11443,
      injectionMode: 'inject',
    });
  });

  it('reads --kubeconfig, else KUBECONFIG', () => {
    expect(parseConfig(['--kubeconfig', '/a'], { KUBECONFIG: '/b' }).kubeconfig).toBe('/a');
    expect(parseConfig([], { KUBECONFIG: '/b' }).kubeconfig).toBe('/b');
  });

  it('derives the authority host from the cloud, and lets a flag override it', () => {
    expect(parseConfig(['--azure-cloud', 'AzureUSGovernment'], {}).authorityHost).toBe(
      'https://login.microsoftonline.us/',
    );
    expect(parseConfig(['--azure-cloud', 'AzureChinaCloud'], {}).authorityHost).toBe(
      'https://login.chinacloudapi.cn/',
    );
    expect(parseConfig(['--authority-host', 'https://login.example'], {}).authorityHost).toBe(
      'https://login.example/',
    );
  });

  it('parses extra pod labels', () => {
    expect(parseConfig(['--extra-pod-labels', 'team=payments,tier=backend'], {}).extraPodLabels).toEqual({
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
    [['--controller'], {}, /--controller: the controller role is not available/],
    [
      [],
      { ENTRA_ACCESS_WEBHOOK: 'maybe' },
      /--webhook \(from ENTRA_ACCESS_WEBHOOK\): expected true or false/,
    ],
  ] as const)('refuses %j %j naming the flag', (argv, env, message) => {
    expect(() => parseConfig([...argv], { ...env })).toThrow(ConfigError);
    expect(() => parseConfig([...argv], { ...env })).toThrow(message);
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
