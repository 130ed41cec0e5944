// Typed client of the emulator's control API, for tests and the harness.
//
// It uses node:https rather than fetch because the test process usually does not trust the
// harness CA (NODE_EXTRA_CA_CERTS is read only at process start) and global fetch takes no `ca`
// option; pass the CA here instead.
import { Agent, request } from 'node:https';
import type {
  ArmBucket,
  ArmRequestLimits,
  OperationLimit,
  RateLimits,
  RuntimeSettings,
  RuntimeSettingsPatch,
} from './config.ts';
import type {
  IdentityView,
  RoleAssignmentView,
  SeedRoleAssignment,
  StorageAccountView,
} from './control-routes.ts';
import type { CountersSnapshot } from './counters.ts';
import type { FaultRule, FaultRuleInput } from './faults.ts';
import type { IssuedAccessToken, IssuedTokensSnapshot, ReceivedClientAssertion } from './issued-tokens.ts';
import type { NewIdentity } from './state.ts';

export { ARM_REQUEST_LIMITS, AZURE_RATE_LIMITS, FIC_UNSUPPORTED_LOCATIONS } from './config.ts';
export { BUILT_IN_ROLES, ROLE_IDS } from './role-definitions.ts';
export type {
  ArmBucket,
  ArmRequestLimits,
  CountersSnapshot,
  FaultRule,
  FaultRuleInput,
  IdentityView,
  IssuedAccessToken,
  IssuedTokensSnapshot,
  OperationLimit,
  RateLimits,
  ReceivedClientAssertion,
  RoleAssignmentView,
  RuntimeSettings,
  RuntimeSettingsPatch,
  SeedRoleAssignment,
  StorageAccountView,
};

export type CreateIdentityRequest = NewIdentity;

export interface FicView {
  id: string;
  name: string;
  type: string;
  properties: { issuer: string; subject: string; audiences: string[] };
  /** When the FIC was last created or updated (ISO); propagation counts from here. */
  changedAt: string;
  /** Made through the control API, so exempt from the propagation delay. */
  seeded: boolean;
}

export interface IdentityRef {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
}

export interface FicSpec {
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface IdentityWithFics extends IdentityView {
  federatedIdentityCredentials: FicView[];
}

export interface AzureEmulatorClientOptions {
  /** PEM of the CA that signed the emulator's certificate, when this process does not trust it. */
  ca?: string | Buffer;
}

/** Parses an identity's ARM id (`/subscriptions/{s}/resourceGroups/{rg}/providers/.../{name}`). */
export function parseIdentityId(id: string): IdentityRef {
  const match =
    /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/microsoft\.managedidentity\/userassignedidentities\/([^/]+)$/i.exec(
      id,
    );
  if (!match) throw new Error(`not a user-assigned identity id: ${id}`);
  return { subscriptionId: match[1]!, resourceGroup: match[2]!, name: match[3]! };
}

function identityPath(identity: string | IdentityRef): string {
  const ref = typeof identity === 'string' ? parseIdentityId(identity) : identity;
  return [ref.subscriptionId, ref.resourceGroup, ref.name].map(encodeURIComponent).join('/');
}

export class AzureEmulatorClient {
  readonly baseUrl: string;
  readonly #agent: Agent | undefined;

  constructor(baseUrl: string, options: AzureEmulatorClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.#agent = options.ca ? new Agent({ ca: options.ca, keepAlive: false }) : undefined;
  }

  #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(`${this.baseUrl}/_emulator${path}`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    return new Promise<T>((resolve, reject) => {
      const req = request(url, { method, headers, ...(this.#agent ? { agent: this.#agent } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            parsed = text;
          }
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            const detail = (parsed as { error?: unknown } | undefined)?.error ?? text;
            reject(new Error(`azure emulator ${method} ${path}: ${status} ${JSON.stringify(detail)}`));
          } else {
            resolve(parsed as T);
          }
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  health(): Promise<{ ok: boolean }> {
    return this.#call('GET', '/health');
  }

  createIdentity(spec: CreateIdentityRequest): Promise<IdentityView> {
    return this.#call('POST', '/identities', spec);
  }

  /** `identity` is its ARM id or its parts. */
  async deleteIdentity(identity: string | IdentityRef): Promise<void> {
    await this.#call('DELETE', `/identities/${identityPath(identity)}`);
  }

  /**
   * Creates or updates a FIC without going through ARM, as an administrator would have made it out
   * of band; it is usable in the token exchange at once. Azure's FIC rules still apply.
   */
  async putFederatedCredential(identity: string | IdentityRef, name: string, spec: FicSpec): Promise<void> {
    await this.#call(
      'PUT',
      `/identities/${identityPath(identity)}/federatedIdentityCredentials/${encodeURIComponent(name)}`,
      spec,
    );
  }

  async listIdentities(): Promise<IdentityWithFics[]> {
    return (await this.#call<{ value: IdentityWithFics[] }>('GET', '/identities')).value;
  }

  getConfig(): Promise<RuntimeSettings> {
    return this.#call('GET', '/config');
  }

  /**
   * Changes runtime settings; keys not given keep their value. `rateLimits` is replaced whole
   * (Azure's by default; `{}` lifts every limit); `rateLimitsBySubscription` sets the subscriptions
   * it names (null removes one); `ficsUnsupported` replaces the lists it gives.
   */
  setConfig(patch: RuntimeSettingsPatch): Promise<RuntimeSettings> {
    return this.#call('POST', '/config', patch);
  }

  async addFault(rule: FaultRuleInput): Promise<string> {
    return (await this.#call<{ id: string }>('POST', '/faults', rule)).id;
  }

  async listFaults(): Promise<FaultRule[]> {
    return (await this.#call<{ value: FaultRule[] }>('GET', '/faults')).value;
  }

  async removeFault(id: string): Promise<void> {
    await this.#call('DELETE', `/faults/${encodeURIComponent(id)}`);
  }

  async clearFaults(): Promise<void> {
    await this.#call('DELETE', '/faults');
  }

  counters(): Promise<CountersSnapshot> {
    return this.#call('GET', '/counters');
  }

  async resetCounters(): Promise<void> {
    await this.#call('POST', '/counters/reset');
  }

  /**
   * Every access token the emulator issued (ARM and PostgreSQL scopes) and every client assertion
   * (service-account JWT) it received since start or the last clearIssuedTokens(); reset() keeps them.
   */
  issuedTokens(): Promise<IssuedTokensSnapshot> {
    return this.#call('GET', '/issued-tokens');
  }

  async clearIssuedTokens(): Promise<void> {
    await this.#call('DELETE', '/issued-tokens');
  }

  /** Sets the identity's database role to a random password; returns the role, or null if unmapped. */
  async revoke(principalId: string): Promise<string | null> {
    return (await this.#call<{ role: string | null }>('POST', '/revoke', { principalId })).role;
  }

  /**
   * Makes a role assignment as an administrator would out of band: in effect at once, with no
   * token, rights or delays; Azure's duplicate and limit rules still apply.
   */
  seedRoleAssignment(spec: SeedRoleAssignment): Promise<RoleAssignmentView> {
    return this.#call('POST', '/roleAssignments', spec);
  }

  async listRoleAssignments(): Promise<RoleAssignmentView[]> {
    return (await this.#call<{ value: RoleAssignmentView[] }>('GET', '/roleAssignments')).value;
  }

  /** Removes a role assignment at once (no propagation delay). */
  async removeRoleAssignment(scope: string, name: string): Promise<void> {
    const query = new URLSearchParams({ scope, name }).toString();
    await this.#call('DELETE', `/roleAssignments?${query}`);
  }

  /** A storage account (and containers) for the Blob data plane; `name`: 3–24 lower-case letters and digits. */
  createStorageAccount(spec: {
    subscriptionId: string;
    resourceGroup: string;
    name: string;
    containers?: string[];
  }): Promise<StorageAccountView> {
    return this.#call('POST', '/storageAccounts', spec);
  }

  createContainer(account: string, container: string): Promise<StorageAccountView> {
    return this.#call(
      'PUT',
      `/storageAccounts/${encodeURIComponent(account)}/containers/${encodeURIComponent(container)}`,
    );
  }

  async listStorageAccounts(): Promise<StorageAccountView[]> {
    return (await this.#call<{ value: StorageAccountView[] }>('GET', '/storageAccounts')).value;
  }

  /** Writes a block blob without the data plane (UTF-8 text). */
  async putBlob(spec: {
    account: string;
    container: string;
    name: string;
    content: string;
    contentType?: string;
  }): Promise<void> {
    await this.#call('POST', '/blobs', spec);
  }

  /** Forgets identities, role assignments, storage, faults, counters and runtime settings. */
  async reset(): Promise<void> {
    await this.#call('POST', '/reset');
  }
}
