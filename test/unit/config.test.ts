import { describe, expect, it } from 'vitest';
import { DEFAULT_WEBHOOK_CONFIGURATION_NAME } from '../../src/api/constants.ts';
import {
  COMMANDS,
  type CommandSpec,
  ConfigError,
  envName,
  help,
  OPTION_GROUPS,
  OPTIONS,
  type OptionGroupName,
  parseCommand,
  parseConfig,
  parseDuration,
  readSettings,
  usage,
} from '../../src/config.ts';

const ISSUER = '--oidc-issuer-url=https://westeurope.oic.prod-aks.azure.com/tenant/cluster/';
const DAY_MS = 86_400_000;

describe('parseConfig', () => {
  it('has the controller-runtime defaults, and runs both components unless told otherwise', () => {
    const config = parseConfig([ISSUER], {});
    expect(config).toMatchObject({
      components: ['webhook', 'controller'],
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
      leaderElectionLeaseDurationSeconds: 15,
      leaderElectionRenewDeadlineSeconds: 10,
      leaderElectionRetryPeriodSeconds: 2,
      maxConcurrentReconciles: 4,
      resyncPeriodSeconds: 600,
    });
  });

  it('runs only the components asked for', () => {
    expect(parseConfig(['--webhook'], {}).components).toEqual(['webhook']);
    expect(parseConfig(['--controller', ISSUER], {}).components).toEqual(['controller']);
    expect(parseConfig([], { ENTRA_ACCESS_WEBHOOK: 'true' }).components).toEqual(['webhook']);
    expect(parseConfig(['--webhook', '--controller', ISSUER], {}).components).toEqual([
      'webhook',
      'controller',
    ]);
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

  it('takes leader election timings in seconds, as controller-runtime names them', () => {
    const config = parseConfig(
      [
        '--controller',
        ISSUER,
        '--leader-election-lease-duration=4',
        '--leader-election-renew-deadline=3',
        '--leader-election-retry-period=0.5',
      ],
      {},
    );
    expect(config.controller).toMatchObject({
      leaderElectionLeaseDurationSeconds: 4,
      leaderElectionRenewDeadlineSeconds: 3,
      leaderElectionRetryPeriodSeconds: 0.5,
    });
  });

  it('keeps webhook certificates external unless --cert-mode=self, with mode self settings defaulted', () => {
    const config = parseConfig(['--webhook'], {});
    expect(config.certificates).toEqual({
      mode: 'external',
      secretName: 'entra-access-webhook-tls',
      webhookConfigurationName: DEFAULT_WEBHOOK_CONFIGURATION_NAME,
      serviceName: 'entra-access-webhook',
      caValidityMs: 365 * DAY_MS,
      certValidityMs: 90 * DAY_MS,
      renewBeforeMs: 30 * DAY_MS,
    });
  });

  it('reads the certificate flags and their environment twins', () => {
    const config = parseConfig(
      [
        '--webhook',
        '--cert-mode=self',
        '--cert-secret-name=wh-tls',
        '--webhook-configuration-name=aks-entra-access-test',
        '--cert-validity=1h30m',
        '--cert-renew-before=20m',
      ],
      {
        ENTRA_ACCESS_WEBHOOK_SERVICE_NAME: 'webhook-svc',
        ENTRA_ACCESS_CA_VALIDITY: '30d',
        ENTRA_ACCESS_CERT_MODE: 'external',
      },
    );
    expect(config.certificates).toEqual({
      mode: 'self',
      secretName: 'wh-tls',
      webhookConfigurationName: 'aks-entra-access-test',
      serviceName: 'webhook-svc',
      caValidityMs: 30 * DAY_MS,
      certValidityMs: 90 * 60_000,
      renewBeforeMs: 20 * 60_000,
    });
    expect(parseConfig(['--webhook'], { ENTRA_ACCESS_CERT_MODE: 'self' }).certificates.mode).toBe('self');
  });

  it.each([
    ['2160h', 90 * DAY_MS],
    ['30d', 30 * DAY_MS],
    ['1h30m', 90 * 60_000],
    ['90s', 90_000],
    ['1d2h3m4s', DAY_MS + 2 * 3_600_000 + 3 * 60_000 + 4000],
  ])('parses the duration %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '90', '1.5h', '30m1h', 'h', '-1h', '1w'])('refuses the duration %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
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
    [
      ['--leader-election-lease-duration=2.5'],
      {},
      /--leader-election-lease-duration: expected an integer from 1 to 3600/,
    ],
    [
      ['--leader-election-retry-period=0'],
      {},
      /--leader-election-retry-period: expected a number of seconds above 0/,
    ],
    [
      ['--leader-election-lease-duration=10'],
      {},
      /--leader-election-renew-deadline \(10\) must be less than --leader-election-lease-duration \(10\)/,
    ],
    [
      ['--leader-election-renew-deadline=2'],
      {},
      /--leader-election-retry-period \(2\) must be less than --leader-election-renew-deadline \(2\)/,
    ],
    [['--cert-mode=cert-manager'], {}, /--cert-mode: expected one of external, self, got "cert-manager"/],
    [['--cert-secret-name=Webhook_TLS'], {}, /--cert-secret-name: "Webhook_TLS" is not a valid Secret name/],
    [
      ['--webhook-configuration-name=-bad'],
      {},
      /--webhook-configuration-name: "-bad" is not a valid MutatingWebhookConfiguration name/,
    ],
    [['--webhook-service-name=1svc'], {}, /--webhook-service-name: "1svc" is not a valid Service name/],
    [['--cert-validity=90days'], {}, /--cert-validity: expected a duration such as 2160h/],
    [
      [],
      { ENTRA_ACCESS_CERT_RENEW_BEFORE: '1m' },
      /--cert-renew-before \(from ENTRA_ACCESS_CERT_RENEW_BEFORE\): must be at least 5m/,
    ],
    [['--cert-validity=9000h'], {}, /--cert-validity: "9000h" is longer than --ca-validity "8760h"/],
    [['--cert-renew-before=2160h'], {}, /--cert-renew-before: "2160h" must be shorter than --cert-validity/],
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
      'cert-mode',
      'cert-secret-name',
      'webhook-configuration-name',
      'webhook-service-name',
      'ca-validity',
      'cert-validity',
      'cert-renew-before',
    ]) {
      expect(text).toContain(`--${flag}`);
      expect(text).toContain(envName(flag));
    }
  });
});

/** A valid value for each flag without a usable default, to give it on the command line. */
const SAMPLE: Record<string, string> = {
  kubeconfig: '/tmp/kubeconfig',
  'authority-host': 'https://login.example/',
  'extra-pod-labels': 'team=payments',
  'tenant-id': '72f988bf-86f1-41af-91ab-2d7cd011db47',
  'oidc-issuer-url': 'https://issuer.example/tenant/cluster/',
  'leader-election-namespace': 'leases',
  'arm-endpoint': 'https://management.example/',
  'postgres-token-scope': 'https://ossrdbms-aad.database.example/.default',
};

/** `--flag` or `--flag=value`, with a value the flag accepts. */
function validArg(flag: string): string {
  const option: { type: string; default?: string } = OPTIONS[flag as keyof typeof OPTIONS];
  if (option.type === 'boolean') return `--${flag}`;
  const value = SAMPLE[flag] ?? option.default;
  if (value === undefined) throw new Error(`no sample value for --${flag}: add one to SAMPLE`);
  return `--${flag}=${value}`;
}

const GROUP_NAMES = Object.keys(OPTION_GROUPS) as OptionGroupName[];
const flagsOf = (group: OptionGroupName): string[] => Object.keys(OPTION_GROUPS[group].options);
/** Each (group, flag) pair. */
const GROUPED_FLAGS = GROUP_NAMES.flatMap((group) => flagsOf(group).map((flag) => [group, flag] as const));
/** A command that accepts only the common flags, as `entra-access proxy` may. */
const COMMON_ONLY: CommandSpec = {
  name: 'proxy',
  summary: 'A command with the common flags only.',
  groups: ['common'],
};

describe('subcommands and option groups', () => {
  it('puts every flag in exactly one group', () => {
    const all = GROUP_NAMES.flatMap(flagsOf);
    expect(new Set(all).size).toBe(all.length);
    expect(all.sort()).toEqual(Object.keys(OPTIONS).sort());
  });

  it.each([
    ['kubeconfig', 'common'],
    ['namespace', 'common'],
    ['bind-address', 'common'],
    ['metrics-port', 'common'],
    ['log-level', 'common'],
    ['azure-cloud', 'common'],
    ['authority-host', 'common'],
    ['webhook', 'webhook'],
    ['cert-mode', 'webhook'],
    ['injection-mode', 'webhook'],
    ['tenant-id', 'webhook'],
    ['controller', 'controller'],
    ['oidc-issuer-url', 'controller'],
    ['leader-elect', 'controller'],
    ['arm-endpoint', 'controller'],
  ] as const)('puts --%s in the %s group (the part of the process that reads it)', (flag, group) => {
    expect(flagsOf(group)).toContain(flag);
  });

  it('has `run` accept the common, webhook and controller groups', () => {
    expect(COMMANDS.run.groups).toEqual(['common', 'webhook', 'controller']);
  });

  it.each(GROUPED_FLAGS)('has `run` accept the %s flag --%s', (_group, flag) => {
    const args = [validArg(flag), ...(flag === 'oidc-issuer-url' ? [] : [ISSUER])];
    expect(() => parseConfig(args, {})).not.toThrow();
    expect(parseCommand('run', args, {})).toEqual(parseConfig(args, {}));
  });

  it.each(GROUPED_FLAGS.filter(([group]) => group !== 'common'))(
    'has a command without the %s group refuse --%s, naming the flag and the command',
    (group, flag) => {
      const read = () => readSettings(COMMON_ONLY, [validArg(flag)], {});
      expect(read).toThrow(ConfigError);
      expect(read).toThrow(
        `--${flag}: not a flag of "entra-access proxy"; it is a ${group} flag, for "entra-access run". Run "entra-access proxy --help" for the flags.`,
      );
    },
  );

  it('has a command accept the flags of its groups, and read them with their environment twins', () => {
    const read = readSettings(COMMON_ONLY, ['--log-level=debug'], { ENTRA_ACCESS_NAMESPACE: 'apps' });
    expect(read.setting('log-level')).toEqual({ value: 'debug', from: '--log-level' });
    expect(read.setting('namespace')).toEqual({
      value: 'apps',
      from: '--namespace (from ENTRA_ACCESS_NAMESPACE)',
    });
  });

  it("ignores the environment twins of another group's flags (a sidecar inherits the pod's)", () => {
    const env = { ENTRA_ACCESS_WEBHOOK_PORT: 'not a port', ENTRA_ACCESS_WEBHOOK: 'maybe' };
    expect(() => readSettings(COMMON_ONLY, [], env)).not.toThrow();
    // Reading a setting outside the command's groups is a bug in the command table, not a user error.
    const read = readSettings(COMMON_ONLY, [], env);
    expect(() => read.setting('webhook-port')).toThrow(/entra-access proxy reads --webhook-port/);
    expect(() => read.setting('webhook-port')).not.toThrow(ConfigError);
  });

  it('still calls an unknown flag unknown', () => {
    expect(() => readSettings(COMMON_ONLY, ['--no-such-flag'], {})).toThrow(
      /Unknown option '--no-such-flag'. Run "entra-access proxy --help" for the flags./,
    );
  });

  it('prints `run --help` by option group, each flag under its group', () => {
    const text = usage('run');
    expect(text).toMatch(/^Usage: entra-access run \[flags\]/);
    expect(text).toContain('Flags by option group (common, webhook, controller)');
    const headings = GROUP_NAMES.map((group) => text.indexOf(`\n${OPTION_GROUPS[group].title} flags (`));
    expect(headings.every((at) => at > 0)).toBe(true);
    expect([...headings].sort((a, b) => a - b)).toEqual(headings);
    GROUP_NAMES.forEach((group, i) => {
      for (const flag of flagsOf(group)) {
        const at = text.indexOf(
          `\n  --${flag}${OPTIONS[flag as keyof typeof OPTIONS].type === 'string' ? ' value' : ''}  [`,
        );
        expect(at, `--${flag} under ${group}`).toBeGreaterThan(headings[i]!);
        if (i + 1 < headings.length) expect(at, `--${flag} under ${group}`).toBeLessThan(headings[i + 1]!);
      }
    });
    expect(usage()).toBe(text);
  });

  it("prints a command's help with its groups only", () => {
    const text = usage(COMMON_ONLY);
    expect(text).toMatch(/^Usage: entra-access proxy \[flags\]/);
    expect(text).toContain('Common flags (');
    expect(text).not.toContain('Webhook flags');
    expect(text).not.toContain('--webhook-port');
  });

  it('prints `entra-access --help` with the commands, their groups, and every group once', () => {
    const text = help();
    expect(text).toContain('Usage: entra-access <command> [flags]');
    expect(text).toMatch(/\n {2}run +Run the operator/);
    expect(text).toContain('Option groups: common, webhook, controller.');
    expect(text).toMatch(/\n {2}help +This help/);
    for (const group of GROUP_NAMES) {
      expect(text.split(`\n${OPTION_GROUPS[group].title} flags (`)).toHaveLength(2);
      expect(text).toMatch(
        new RegExp(`\\n${OPTION_GROUPS[group].title} flags \\([^\\n]*\\), accepted by run:`),
      );
    }
    for (const flag of Object.keys(OPTIONS)) expect(text).toContain(`--${flag}`);
  });
});
