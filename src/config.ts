// The process configuration: the subcommands, the option groups each accepts, and every flag with
// its ENTRA_ACCESS_* environment twin, its default and its validation. A flag is in the group of
// the part of the process that reads it. Pure: parseCommand(command, argv, env) (for `run`,
// parseConfig(argv, env)) either returns the command's complete typed config or throws a
// ConfigError naming the flag and what to change. Nothing here loads express, the Kubernetes
// client or the Azure SDKs: every subcommand's start-up, the proxy's too, reads this file.
import { parseArgs } from 'node:util';
import { DEFAULT_WEBHOOK_CONFIGURATION_NAME } from './api/constants.ts';
import { parseLabelList } from './webhook/policy/labels.ts';

export type InjectionModeSetting = 'auto' | 'label' | 'inject';
export type AzureCloud = 'AzurePublicCloud' | 'AzureUSGovernment' | 'AzureChinaCloud';
/** A process component `entra-access run` can start; each has an option group of its own name. */
export type Component = 'webhook' | 'controller';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** external: someone else (cert-manager) provides --cert-dir; self: the operator manages it. */
export type CertMode = 'external' | 'self';

/** The configuration of `entra-access run`. */
export interface Config {
  /** The components to start: those --webhook / --controller name, else all of them. */
  components: Component[];
  kubeconfig?: string;
  namespace: string;
  bindAddress: string;
  webhookPort: number;
  certDir: string;
  webhookMaxRequestBytes: number;
  metricsPort: number;
  healthPort: number;
  injectionMode: InjectionModeSetting;
  extraPodLabels: Record<string, string>;
  tenantId: string;
  azureCloud: AzureCloud;
  authorityHost: string;
  logLevel: LogLevel;
  certificates: CertificatesConfig;
  controller: ControllerConfig;
}

/** The webhook's serving certificates (--cert-mode and the settings of mode self). */
export interface CertificatesConfig {
  mode: CertMode;
  /** Mode self: the kubernetes.io/tls Secret in --namespace holding the CA and serving pair. */
  secretName: string;
  /** Mode self: the MutatingWebhookConfiguration whose webhooks get the CA bundle. */
  webhookConfigurationName: string;
  /** Mode self: the Service in front of the webhook; its DNS names go into the certificate. */
  serviceName: string;
  caValidityMs: number;
  certValidityMs: number;
  /** A certificate is renewed when it has less than this left (the CA too). */
  renewBeforeMs: number;
}

export interface ControllerConfig {
  /** Used in federated credential names, so several clusters can share one identity. */
  clusterName: string;
  /** The cluster's OIDC issuer URL: the issuer of every federated credential the operator writes. */
  oidcIssuerUrl: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  /** controller-runtime's LeaseDuration, RenewDeadline and RetryPeriod, in seconds (defaults 15/10/2). */
  leaderElectionLeaseDurationSeconds: number;
  leaderElectionRenewDeadlineSeconds: number;
  leaderElectionRetryPeriodSeconds: number;
  /** Overrides of the cloud's defaults; undefined means the cloud's. */
  armEndpoint?: string;
  postgresTokenScope?: string;
  maxConcurrentReconciles: number;
  /** Every resource is reconciled at least this often, so drift is repaired. */
  resyncPeriodSeconds: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Entra authority per cloud: what pods get as AZURE_AUTHORITY_HOST unless overridden. */
export const AUTHORITY_HOSTS: Record<AzureCloud, string> = {
  AzurePublicCloud: 'https://login.microsoftonline.com/',
  AzureUSGovernment: 'https://login.microsoftonline.us/',
  AzureChinaCloud: 'https://login.chinacloudapi.cn/',
};

interface Option {
  type: 'string' | 'boolean';
  default?: string;
  help: string;
}

interface OptionGroup {
  /** Heading of the group in --help. */
  title: string;
  /** What the group configures, for --help. */
  about: string;
  /** The component the group configures; `run` starts it, and its boolean flag selects it. */
  component?: Component;
  options: Record<string, Option>;
}

/**
 * The flags, by option group: a flag is in the group of the part of the process that reads it.
 * Flag name → definition; the environment twin of `--foo-bar` is ENTRA_ACCESS_FOO_BAR. A name is
 * in one group only (test/unit/config.test.ts checks).
 */
export const OPTION_GROUPS = {
  common: {
    title: 'Common',
    about: 'the process: Kubernetes access, logs, the metrics and health servers, the Azure cloud',
    options: {
      kubeconfig: {
        type: 'string',
        help: 'Path to a kubeconfig; else $KUBECONFIG, else the in-cluster service account.',
      },
      namespace: {
        type: 'string',
        default: 'entra-access-system',
        help: 'The namespace entra-access runs in; it is never mutated.',
      },
      'bind-address': {
        type: 'string',
        default: '0.0.0.0',
        help: 'Address the webhook, metrics and health servers bind.',
      },
      'metrics-port': { type: 'string', default: '8080', help: 'HTTP port serving /metrics; 0 disables it.' },
      'health-port': {
        type: 'string',
        default: '8081',
        help: 'HTTP port serving /healthz and /readyz; 0 disables it.',
      },
      'log-level': { type: 'string', default: 'info', help: 'debug, info, warn or error.' },
      'azure-cloud': {
        type: 'string',
        default: 'AzurePublicCloud',
        help: 'AzurePublicCloud, AzureUSGovernment or AzureChinaCloud: sets the defaults of the authority host, the ARM endpoint and the PostgreSQL token scope.',
      },
      'authority-host': { type: 'string', help: "Entra authority for pods (https); default: the cloud's." },
    },
  },
  webhook: {
    title: 'Webhook',
    about: 'the admission webhook component: its HTTPS server, serving certificates, what it injects',
    component: 'webhook',
    options: {
      webhook: {
        type: 'boolean',
        help: 'Run the admission webhook component (with neither --webhook nor --controller, both run).',
      },
      'webhook-port': { type: 'string', default: '9443', help: 'HTTPS port of the admission webhook.' },
      'cert-dir': {
        type: 'string',
        default: '/tmp/k8s-webhook-server/serving-certs',
        help: 'Directory with tls.crt and tls.key for the webhook; reloaded when they change.',
      },
      'cert-mode': {
        type: 'string',
        default: 'external',
        help: 'external: tls.crt/tls.key in --cert-dir come from elsewhere (cert-manager); self: the operator keeps a CA and serving certificate in --cert-secret-name, writes them to --cert-dir, patches the CA bundle into --webhook-configuration-name and renews them.',
      },
      'cert-secret-name': {
        type: 'string',
        default: 'entra-access-webhook-tls',
        help: 'Cert mode self: the kubernetes.io/tls Secret in --namespace holding tls.crt, tls.key, ca.crt (and the CA key).',
      },
      'webhook-configuration-name': {
        type: 'string',
        default: DEFAULT_WEBHOOK_CONFIGURATION_NAME,
        help: 'Cert mode self: the MutatingWebhookConfiguration whose webhooks get the CA bundle.',
      },
      'webhook-service-name': {
        type: 'string',
        default: 'entra-access-webhook',
        help: 'Cert mode self: the webhook Service; the certificate names <svc>, <svc>.<ns>, <svc>.<ns>.svc and <svc>.<ns>.svc.cluster.local.',
      },
      'ca-validity': {
        type: 'string',
        default: '8760h',
        help: 'Cert mode self: lifetime of a new CA (a duration: 8760h, 90m, 1h30m, 30d).',
      },
      'cert-validity': {
        type: 'string',
        default: '2160h',
        help: 'Cert mode self: lifetime of a new serving certificate (at most --ca-validity).',
      },
      'cert-renew-before': {
        type: 'string',
        default: '720h',
        help: 'Cert mode self: renew a certificate (and the CA) when it has less than this left.',
      },
      'webhook-max-request-bytes': {
        type: 'string',
        default: '3145728',
        help: 'Largest AdmissionReview body accepted (the apiserver caps requests at 3 MiB).',
      },
      'injection-mode': {
        type: 'string',
        default: 'auto',
        help: 'label: labels only (the AKS workload-identity add-on injects the rest); inject: also env and token volume; auto: label if the add-on webhook exists, else inject.',
      },
      'extra-pod-labels': {
        type: 'string',
        default: '',
        help: 'Labels added to every enabled pod, k=v,k2=v2.',
      },
      'tenant-id': {
        type: 'string',
        default: '',
        help: "Entra tenant ID (GUID) for service accounts and pods when the identity's own tenant is not known yet (namespace default client IDs, a resource not reconciled yet).",
      },
    },
  },
  controller: {
    title: 'Controller',
    about: 'the controller component: federated credentials, leader election, reconciles',
    component: 'controller',
    options: {
      controller: {
        type: 'boolean',
        help: 'Run the controller component (leader-elected; with neither --webhook nor --controller, both run).',
      },
      'cluster-name': {
        type: 'string',
        default: 'aks',
        help: 'Short name of this cluster, part of every federated credential name (controller).',
      },
      'oidc-issuer-url': {
        type: 'string',
        help: "The cluster's OIDC issuer URL (az aks show --query oidcIssuerProfile.issuerUrl); required by the controller.",
      },
      'leader-elect': {
        type: 'string',
        default: 'true',
        help: 'Elect one controller among the replicas (Lease).',
      },
      'leader-election-namespace': { type: 'string', help: 'Namespace of the Lease; default: --namespace.' },
      'leader-election-id': {
        type: 'string',
        default: 'entra-access-controller',
        help: 'Name of the Lease.',
      },
      'leader-election-lease-duration': {
        type: 'string',
        default: '15',
        help: 'Seconds a standby waits after the last renewal before it takes the lease (whole seconds).',
      },
      'leader-election-renew-deadline': {
        type: 'string',
        default: '10',
        help: 'Seconds the leader keeps retrying a failed renewal before it steps down; less than the lease duration.',
      },
      'leader-election-retry-period': {
        type: 'string',
        default: '2',
        help: 'Seconds between attempts to acquire or renew the lease; less than the renew deadline.',
      },
      'arm-endpoint': { type: 'string', help: "Azure Resource Manager endpoint; default: the cloud's." },
      'postgres-token-scope': {
        type: 'string',
        help: "Entra scope of PostgreSQL tokens; default: the cloud's.",
      },
      'max-concurrent-reconciles': { type: 'string', default: '4', help: 'Reconciles that run at once.' },
      'resync-period': {
        type: 'string',
        default: '600',
        help: 'Seconds between full reconciles of every resource (drift repair); a resync without change writes nothing.',
      },
    },
  },
} as const satisfies Record<string, OptionGroup>;

export type OptionGroupName = keyof typeof OPTION_GROUPS;

/** Every flag of every group, by name. */
export const OPTIONS = {
  ...OPTION_GROUPS.common.options,
  ...OPTION_GROUPS.webhook.options,
  ...OPTION_GROUPS.controller.options,
} as const satisfies Record<string, Option>;

type OptionName = keyof typeof OPTIONS;

export function envName(flag: string): string {
  return `ENTRA_ACCESS_${flag.toUpperCase().replaceAll('-', '_')}`;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Service names are RFC 1035 labels: they start with a letter. */
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * A duration as Kubernetes tools write them (Go's time.ParseDuration subset, plus days): units in
 * descending order, each at most once, e.g. 2160h, 1h30m, 90s, 30d. Undefined when malformed.
 */
export function parseDuration(text: string): number | undefined {
  const match = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!match || text === '') return undefined;
  const [, d, h, m, s] = match;
  return ((Number(d ?? 0) * 24 + Number(h ?? 0)) * 60 + Number(m ?? 0)) * 60_000 + Number(s ?? 0) * 1000;
}

/** A subcommand as the configuration sees it: its name, what it does, the option groups it reads. */
export interface CommandSpec {
  name: string;
  /** One line for `entra-access --help`. */
  summary: string;
  /** The option groups whose flags (and environment twins) the command accepts. */
  groups: readonly OptionGroupName[];
}

/**
 * The subcommands: the option groups each accepts and the typed configuration it builds from them
 * (src/main.ts says how each starts). A new subcommand is a row here with its groups (a new group
 * in OPTION_GROUPS if it needs flags of its own), a function building its config from a
 * SettingsReader, and its start in src/main.ts.
 */
export const COMMANDS = {
  run: {
    name: 'run',
    summary:
      'Run the operator: the admission webhook (every replica) and the controller (the elected leader), or only the one --webhook or --controller names.',
    groups: ['common', 'webhook', 'controller'],
    config: runConfig,
  },
} as const satisfies Record<string, CommandSpec & { config: (read: SettingsReader) => unknown }>;

export type CommandName = keyof typeof COMMANDS;
/** The typed configuration `entra-access <command>` runs with. */
export type CommandConfig<C extends CommandName> = ReturnType<(typeof COMMANDS)[C]['config']>;

export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

/** `entra-access <command> [argv]`'s configuration from argv and env, or a ConfigError. */
export function parseCommand<C extends CommandName>(
  name: C,
  argv: string[],
  env: NodeJS.ProcessEnv,
): CommandConfig<C> {
  const command = COMMANDS[name];
  return command.config(readSettings(command, argv, env)) as CommandConfig<C>;
}

/** `entra-access run [argv]`'s configuration. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  return parseCommand('run', argv, env);
}

/** The option group that holds `flag`, for messages. */
function groupOf(flag: string): OptionGroupName | undefined {
  return (Object.keys(OPTION_GROUPS) as OptionGroupName[]).find((group) =>
    Object.hasOwn(OPTION_GROUPS[group].options, flag),
  );
}

/** The values of a command's settings, each from its flag, else its environment twin, else its default. */
export interface SettingsReader {
  env: NodeJS.ProcessEnv;
  /** A string setting, with where it came from for messages. */
  setting(name: OptionName): { value: string; from: string };
  /** A boolean flag: true if given; else its environment twin (true/1/yes, false/0/no); else undefined. */
  bool(name: OptionName): boolean | undefined;
  integer(name: OptionName, min: number, max: number): number;
  /** Seconds, decimals allowed (e.g. 0.5), within (0, max]. */
  seconds(name: OptionName, max: number): number;
  oneOf<T extends string>(name: OptionName, allowed: readonly T[]): T;
}

/**
 * Reads `command`'s flags from argv: a flag of a group the command does not accept is refused,
 * naming the flag and the command. Environment twins are read only for accepted flags, so a
 * variable meant for another command (a sidecar inherits the pod's) is ignored.
 */
export function readSettings(command: CommandSpec, argv: string[], env: NodeJS.ProcessEnv): SettingsReader {
  const accepted = new Set(command.groups.flatMap((group) => Object.keys(OPTION_GROUPS[group].options)));
  const helpHint = `Run "entra-access ${command.name} --help" for the flags.`;
  let parsed: { values: Record<string, string | boolean | undefined> };
  try {
    // Every known flag is parsed (so one of another group gets the message below, not "unknown").
    // Defaults are applied later, after the environment; parseArgs must not fill them in.
    const options = Object.fromEntries(Object.entries(OPTIONS).map(([name, { type }]) => [name, { type }]));
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. ${helpHint}`);
  }
  for (const flag of Object.keys(parsed.values)) {
    if (accepted.has(flag)) continue;
    const group = groupOf(flag);
    const takers = Object.values(COMMANDS as Record<string, CommandSpec>)
      .filter((other) => group !== undefined && other.groups.includes(group))
      .map((other) => `"entra-access ${other.name}"`);
    throw new ConfigError(
      `--${flag}: not a flag of "entra-access ${command.name}"; it is a ${group} flag${takers.length > 0 ? `, for ${takers.join(' and ')}` : ''}. ${helpHint}`,
    );
  }
  const flags = parsed.values as Partial<Record<OptionName, string | boolean>>;
  const known = (name: OptionName): void => {
    // A command reading a setting outside its groups is a bug in COMMANDS, not a user error.
    if (!accepted.has(name))
      throw new Error(`entra-access ${command.name} reads --${name}, not in its groups`);
  };

  const setting = (name: OptionName): { value: string; from: string } => {
    known(name);
    const flag = flags[name];
    if (typeof flag === 'string') return { value: flag, from: `--${name}` };
    const fromEnv = env[envName(name)];
    if (fromEnv !== undefined && fromEnv !== '')
      return { value: fromEnv, from: `--${name} (from ${envName(name)})` };
    const option: Option = OPTIONS[name];
    return { value: option.default ?? '', from: `--${name}` };
  };
  const bool = (name: OptionName): boolean | undefined => {
    known(name);
    if (flags[name] === true) return true;
    const fromEnv = env[envName(name)];
    if (fromEnv === undefined || fromEnv === '') return undefined;
    if (/^(true|1|yes)$/i.test(fromEnv)) return true;
    if (/^(false|0|no)$/i.test(fromEnv)) return false;
    throw new ConfigError(`--${name} (from ${envName(name)}): expected true or false, got "${fromEnv}"`);
  };
  const integer = (name: OptionName, min: number, max: number): number => {
    const { value, from } = setting(name);
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new ConfigError(`${from}: expected an integer from ${min} to ${max}, got "${value}"`);
    }
    return n;
  };
  const seconds = (name: OptionName, max: number): number => {
    const { value, from } = setting(name);
    const n = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0) || n > max) {
      throw new ConfigError(
        `${from}: expected a number of seconds above 0 and at most ${max}, got "${value}"`,
      );
    }
    return n;
  };
  const oneOf = <T extends string>(name: OptionName, allowed: readonly T[]): T => {
    const { value, from } = setting(name);
    if (!(allowed as readonly string[]).includes(value)) {
      throw new ConfigError(`${from}: expected one of ${allowed.join(', ')}, got "${value}"`);
    }
    return value as T;
  };
  return { env, setting, bool, integer, seconds, oneOf };
}

/** `entra-access run`: the components asked for, and the settings of all of them. */
function runConfig(read: SettingsReader): Config {
  const { env, setting, integer, seconds, oneOf } = read;
  // The groups of `run` that configure a component: --webhook / --controller pick among them.
  const available = COMMANDS.run.groups.flatMap((group) => {
    const component: Component | undefined = (OPTION_GROUPS[group] as OptionGroup).component;
    return component ? [component] : [];
  });
  const wanted = available.filter((component) => read.bool(component) === true);
  const components: Component[] = wanted.length > 0 ? wanted : available;

  const namespace = setting('namespace');
  if (!DNS_LABEL.test(namespace.value)) {
    throw new ConfigError(`${namespace.from}: "${namespace.value}" is not a valid namespace name`);
  }

  const extra = setting('extra-pod-labels');
  const { labels: extraPodLabels, errors } = parseLabelList(extra.value);
  if (errors.length > 0) throw new ConfigError(`${extra.from}: ${errors.join('; ')}`);

  const tenant = setting('tenant-id');
  if (tenant.value !== '' && !GUID.test(tenant.value)) {
    throw new ConfigError(`${tenant.from}: expected the Entra tenant ID as a GUID, got "${tenant.value}"`);
  }

  const azureCloud = oneOf<AzureCloud>('azure-cloud', [
    'AzurePublicCloud',
    'AzureUSGovernment',
    'AzureChinaCloud',
  ]);
  const authority = setting('authority-host');
  const authorityHost = authority.value === '' ? AUTHORITY_HOSTS[azureCloud] : authority.value;
  if (!/^https:\/\/[^\s/]+(\/.*)?$/.test(authorityHost)) {
    throw new ConfigError(
      `${authority.from}: expected an https URL (the Azure SDKs refuse http), got "${authorityHost}"`,
    );
  }

  const httpsUrl = (name: OptionName, required: boolean): string | undefined => {
    const { value, from } = setting(name);
    if (value === '') {
      // "role" here is the controller component; the message stays as users and docs know it.
      if (required) throw new ConfigError(`${from}: required by the controller role`);
      return undefined;
    }
    if (!/^https:\/\/[^\s/]+(\/\S*)?$/.test(value))
      throw new ConfigError(`${from}: expected an https URL, got "${value}"`);
    return value;
  };
  const leaderElect = setting('leader-elect');
  if (!/^(true|false)$/.test(leaderElect.value)) {
    throw new ConfigError(`${leaderElect.from}: expected true or false, got "${leaderElect.value}"`);
  }
  const clusterName = setting('cluster-name');
  if (!DNS_LABEL.test(clusterName.value) || clusterName.value.length > 40) {
    throw new ConfigError(
      `${clusterName.from}: expected a DNS label of at most 40 characters, got "${clusterName.value}"`,
    );
  }
  const runsController = components.includes('controller');
  // client-go's rules: RetryPeriod < RenewDeadline < LeaseDuration, so a leader steps down before
  // a standby may consider its lease expired.
  const leaseDuration = integer('leader-election-lease-duration', 1, 3600);
  const renewDeadline = seconds('leader-election-renew-deadline', 3600);
  const retryPeriod = seconds('leader-election-retry-period', 3600);
  if (!(renewDeadline < leaseDuration)) {
    throw new ConfigError(
      `--leader-election-renew-deadline (${renewDeadline}) must be less than --leader-election-lease-duration (${leaseDuration})`,
    );
  }
  if (!(retryPeriod < renewDeadline)) {
    throw new ConfigError(
      `--leader-election-retry-period (${retryPeriod}) must be less than --leader-election-renew-deadline (${renewDeadline})`,
    );
  }
  const controller: ControllerConfig = {
    clusterName: clusterName.value,
    oidcIssuerUrl: httpsUrl('oidc-issuer-url', runsController) ?? '',
    leaderElect: leaderElect.value === 'true',
    leaderElectionNamespace: setting('leader-election-namespace').value || namespace.value,
    leaderElectionId: setting('leader-election-id').value,
    leaderElectionLeaseDurationSeconds: leaseDuration,
    leaderElectionRenewDeadlineSeconds: renewDeadline,
    leaderElectionRetryPeriodSeconds: retryPeriod,
    maxConcurrentReconciles: integer('max-concurrent-reconciles', 1, 64),
    resyncPeriodSeconds: integer('resync-period', 10, 86400),
  };
  const armEndpoint = httpsUrl('arm-endpoint', false);
  if (armEndpoint) controller.armEndpoint = armEndpoint;
  const scope = setting('postgres-token-scope');
  if (scope.value !== '') {
    if (!/^https:\/\/\S+\/\.default$/.test(scope.value)) {
      throw new ConfigError(
        `${scope.from}: expected an https scope ending in /.default, got "${scope.value}"`,
      );
    }
    controller.postgresTokenScope = scope.value;
  }

  const certificates = certificatesConfig(setting, oneOf);

  const kubeconfig = setting('kubeconfig').value || env.KUBECONFIG || undefined;
  const config: Config = {
    components,
    namespace: namespace.value,
    bindAddress: setting('bind-address').value,
    webhookPort: integer('webhook-port', 1, 65535),
    certDir: setting('cert-dir').value,
    webhookMaxRequestBytes: integer('webhook-max-request-bytes', 1024, 64 * 1024 * 1024),
    metricsPort: integer('metrics-port', 0, 65535),
    healthPort: integer('health-port', 0, 65535),
    injectionMode: oneOf<InjectionModeSetting>('injection-mode', ['auto', 'label', 'inject']),
    extraPodLabels,
    tenantId: tenant.value,
    azureCloud,
    authorityHost: authorityHost.endsWith('/') ? authorityHost : `${authorityHost}/`,
    logLevel: oneOf<LogLevel>('log-level', ['debug', 'info', 'warn', 'error']),
    certificates,
    controller,
  };
  if (kubeconfig) config.kubeconfig = kubeconfig;
  return config;
}

type Setting = (name: OptionName) => { value: string; from: string };

function certificatesConfig(
  setting: Setting,
  oneOf: <T extends string>(name: OptionName, allowed: readonly T[]) => T,
): CertificatesConfig {
  const mode = oneOf<CertMode>('cert-mode', ['external', 'self']);
  const named = (name: OptionName, pattern: RegExp, max: number, what: string): string => {
    const { value, from } = setting(name);
    if (!pattern.test(value) || value.length > max) {
      throw new ConfigError(`${from}: "${value}" is not a valid ${what}`);
    }
    return value;
  };
  const duration = (name: OptionName, min: number): { ms: number; text: string; from: string } => {
    const { value, from } = setting(name);
    const ms = parseDuration(value);
    if (ms === undefined) {
      throw new ConfigError(`${from}: expected a duration such as 2160h, 90m, 1h30m or 30d, got "${value}"`);
    }
    if (ms < min) {
      throw new ConfigError(`${from}: must be at least ${min / 60_000}m, got "${value}"`);
    }
    return { ms, text: value, from };
  };
  const ca = duration('ca-validity', 10 * 60_000);
  const cert = duration('cert-validity', 10 * 60_000);
  // Renewal is checked every minute: leave several checks between "renew" and "expired".
  const renew = duration('cert-renew-before', 5 * 60_000);
  if (cert.ms > ca.ms) {
    throw new ConfigError(
      `${cert.from}: "${cert.text}" is longer than --ca-validity "${ca.text}"; a certificate cannot outlive its CA`,
    );
  }
  if (renew.ms >= cert.ms) {
    throw new ConfigError(
      `${renew.from}: "${renew.text}" must be shorter than --cert-validity "${cert.text}", or every check would renew`,
    );
  }
  return {
    mode,
    secretName: named('cert-secret-name', DNS_SUBDOMAIN, 253, 'Secret name'),
    webhookConfigurationName: named(
      'webhook-configuration-name',
      DNS_SUBDOMAIN,
      253,
      'MutatingWebhookConfiguration name',
    ),
    serviceName: named(
      'webhook-service-name',
      SERVICE_NAME,
      63,
      'Service name (a DNS label starting with a letter)',
    ),
    caValidityMs: ca.ms,
    certValidityMs: cert.ms,
    renewBeforeMs: renew.ms,
  };
}

/** The help lines of one option group's flags. */
function groupUsage(group: OptionGroupName, takenBy?: string[]): string[] {
  const { title, about, options } = OPTION_GROUPS[group] as OptionGroup;
  const lines = [`${title} flags (${about})${takenBy ? `, accepted by ${takenBy.join(', ')}` : ''}:`];
  for (const [name, option] of Object.entries(options)) {
    const def = option.default ? ` (default "${option.default}")` : '';
    lines.push(
      `  --${name}${option.type === 'string' ? ' value' : ''}  [${envName(name)}]${def}`,
      `      ${option.help}`,
    );
  }
  return lines;
}

/** `entra-access <command> --help`: the command's flags, by option group. */
export function usage(command: CommandName | CommandSpec = 'run'): string {
  const spec: CommandSpec = typeof command === 'string' ? COMMANDS[command] : command;
  const lines = [
    `Usage: entra-access ${spec.name} [flags]`,
    '',
    spec.summary,
    '',
    `Flags by option group (${spec.groups.join(', ')}), each also read from its environment variable:`,
  ];
  for (const group of spec.groups) lines.push('', ...groupUsage(group));
  return lines.join('\n');
}

/** `entra-access --help`: the commands with their option groups, then each group's flags once. */
export function help(): string {
  const commands = Object.values(COMMANDS as Record<string, CommandSpec>);
  const width = Math.max(...commands.map((command) => command.name.length), 'help'.length);
  const lines = [
    'entra-access: Entra Workload ID and Entra PostgreSQL access for AKS',
    '',
    'Usage: entra-access <command> [flags]',
    '',
    'Commands:',
  ];
  for (const command of commands) {
    lines.push(
      `  ${command.name.padEnd(width)}  ${command.summary}`,
      `  ${' '.repeat(width)}  Option groups: ${command.groups.join(', ')}.`,
    );
  }
  lines.push(
    `  ${'help'.padEnd(width)}  This help; "entra-access help <command>" or "entra-access <command> --help" prints one command's.`,
    '',
    'Flags by option group, each also read from its environment variable:',
  );
  for (const group of Object.keys(OPTION_GROUPS) as OptionGroupName[]) {
    const takers = commands
      .filter((command) => command.groups.includes(group))
      .map((command) => command.name);
    lines.push('', ...groupUsage(group, takers));
  }
  return lines.join('\n');
}
