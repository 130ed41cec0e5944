// The operator's own Entra credential, and a token source for its PostgreSQL logins.
//
// In its pod the operator runs with workload identity like any app: the webhook (ours or AKS's)
// gives it AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE, and
// WorkloadIdentityCredential exchanges the projected token. Elsewhere (a developer machine, a VM
// with managed identity) DefaultAzureCredential finds what there is.
import {
  DefaultAzureCredential,
  type TokenCredential,
  type TokenCredentialOptions,
  WorkloadIdentityCredential,
} from '@azure/identity';
import { type CloudSettings, isKnownAuthorityHost } from './cloud.ts';

export type CredentialChoice =
  | { kind: 'workloadIdentity'; tenantId: string; clientId: string; tokenFilePath: string }
  | { kind: 'default' };

export class CredentialConfigError extends Error {
  override name = 'CredentialConfigError';
}

/**
 * Which credential the environment calls for. Pure. A token file without a client or tenant ID is
 * a half-configured pod; failing with what is missing beats falling back to another credential
 * that then fails somewhere less obvious.
 */
export function chooseCredential(env: NodeJS.ProcessEnv): CredentialChoice {
  const tokenFilePath = env.AZURE_FEDERATED_TOKEN_FILE;
  if (!tokenFilePath) return { kind: 'default' };
  const missing = (['AZURE_CLIENT_ID', 'AZURE_TENANT_ID'] as const).filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new CredentialConfigError(
      `AZURE_FEDERATED_TOKEN_FILE is set but ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not: ` +
        "annotate the operator's ServiceAccount with azure.workload.identity/client-id (and tenant-id)",
    );
  }
  return {
    kind: 'workloadIdentity',
    tenantId: env.AZURE_TENANT_ID!,
    clientId: env.AZURE_CLIENT_ID!,
    tokenFilePath,
  };
}

export interface OperatorCredentialOptions {
  cloud: Pick<CloudSettings, 'authorityHost'>;
  /** Defaults to process.env. DefaultAzureCredential reads process.env itself whatever is given. */
  env?: NodeJS.ProcessEnv;
  /**
   * MSAL's instance discovery only knows the public sovereign authorities; defaults to disabled
   * for any other authority host (a proxy, Azure Stack, the test emulator).
   */
  disableInstanceDiscovery?: boolean;
  /** Extra pipeline options, e.g. tlsOptions. */
  credentialOptions?: TokenCredentialOptions;
}

export function createOperatorCredential(options: OperatorCredentialOptions): TokenCredential {
  const choice = chooseCredential(options.env ?? process.env);
  const common = {
    ...options.credentialOptions,
    authorityHost: options.cloud.authorityHost,
    disableInstanceDiscovery:
      options.disableInstanceDiscovery ?? !isKnownAuthorityHost(options.cloud.authorityHost),
  };
  if (choice.kind === 'workloadIdentity') {
    return new WorkloadIdentityCredential({
      ...common,
      tenantId: choice.tenantId,
      clientId: choice.clientId,
      tokenFilePath: choice.tokenFilePath,
    });
  }
  return new DefaultAzureCredential(common);
}

export interface TokenSourceOptions {
  /** Called once at construction and again after every invalidate(). */
  createCredential: () => TokenCredential;
  postgresScope: string;
}

/**
 * The password of the operator's PostgreSQL connections: an Entra token for the database scope.
 * The credential caches the token and refreshes it 5 minutes before expiry, so this asks Entra
 * about once per token lifetime however often connections are opened.
 *
 * When PostgreSQL refuses a token that has not expired (the admin's token was rotated or revoked),
 * invalidate() makes the next call fetch a new one. @azure/identity offers no "bypass the cache"
 * option for client-assertion flows, and each credential instance holds its own MSAL cache, so a
 * new instance is the supported way to force a fresh token.
 */
export class TokenSource {
  readonly #createCredential: () => TokenCredential;
  readonly #scope: string;
  #credential: TokenCredential;
  /** The token last handed out by the current credential. */
  #last: string | undefined;

  constructor(options: TokenSourceOptions) {
    this.#createCredential = options.createCredential;
    this.#scope = options.postgresScope;
    this.#credential = this.#createCredential();
  }

  async getPostgresToken(): Promise<string> {
    const credential = this.#credential;
    let token: Awaited<ReturnType<TokenCredential['getToken']>>;
    try {
      token = await credential.getToken(this.#scope);
    } catch (error) {
      // MSAL remembers a 429/5xx from the token endpoint for 60 s (Retry-After or its default)
      // and refuses every request of that credential meanwhile: after a short Entra outage the
      // operator stayed locked out a minute longer. A new credential asks Entra afresh; the work
      // queue's backoff paces the retries.
      if (credential === this.#credential) this.#credential = this.#createCredential();
      throw error;
    }
    if (!token?.token) throw new Error(`the Azure credential returned no token for ${this.#scope}`);
    if (credential === this.#credential) this.#last = token.token;
    return token.token;
  }

  /**
   * Drops the cached token. Given the refused token, does nothing when a newer one has already
   * replaced it, so many connections failing on the same token cause one refresh, not many.
   * Returns whether it invalidated.
   */
  invalidate(refusedToken?: string): boolean {
    if (refusedToken !== undefined && refusedToken !== this.#last) return false;
    this.#credential = this.#createCredential();
    this.#last = undefined;
    return true;
  }
}
