// One token per scope for every ARM client of the process. ManagedIdentities makes one SDK client
// per subscription, and each client's bearer-token policy asks the credential for a token on its
// first request; @azure/identity's credential does not merge concurrent requests, so N clients
// starting together fetched N tokens (4 for 5 subscriptions in the benchmark, docs/benchmarks.md).
// This wrapper merges concurrent requests for a scope and serves the token until 5 minutes before
// it expires, as @azure/identity would refresh it.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';

const REFRESH_BEFORE_MS = 5 * 60_000;

export class SharedTokenCredential implements TokenCredential {
  #inner: TokenCredential;
  readonly #create: (() => TokenCredential) | undefined;
  readonly #now: () => number;
  readonly #tokens = new Map<string, AccessToken>();
  readonly #pending = new Map<string, Promise<AccessToken | null>>();

  /**
   * `inner` is the credential, or a factory for it: with a factory, a failed request replaces the
   * credential, because MSAL refuses every request of one credential for 60 s after a 429/5xx
   * from the token endpoint, which kept the operator locked out long after a short Entra outage.
   */
  constructor(inner: TokenCredential | (() => TokenCredential), now: () => number = Date.now) {
    this.#create = typeof inner === 'function' ? inner : undefined;
    this.#inner = typeof inner === 'function' ? inner() : inner;
    this.#now = now;
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    // A claims challenge (CAE) asks for a new token by definition: never from the cache.
    if (options?.claims) return this.#inner.getToken(scopes, options);
    const key = [scopes].flat().sort().join(' ');
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresOnTimestamp - this.#now() > REFRESH_BEFORE_MS) return cached;
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = this.#inner.getToken(scopes, options).then(
        (token) => {
          this.#pending.delete(key);
          if (token) this.#tokens.set(key, token);
          return token;
        },
        (error: unknown) => {
          this.#pending.delete(key);
          if (this.#create) this.#inner = this.#create();
          throw error;
        },
      );
      this.#pending.set(key, pending);
    }
    return pending;
  }
}
