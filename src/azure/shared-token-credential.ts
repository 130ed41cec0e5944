// One token per scope for every ARM client of the process. ManagedIdentities makes one SDK client
// per subscription, and each client's bearer-token policy asks the credential for a token on its
// first request; @azure/identity's credential does not merge concurrent requests, so N clients
// starting together fetched N tokens (4 for 5 subscriptions in the benchmark, docs/benchmarks.md).
// This wrapper merges concurrent requests for a scope and serves the token until 5 minutes before
// it expires, as @azure/identity would refresh it.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';

const REFRESH_BEFORE_MS = 5 * 60_000;

export class SharedTokenCredential implements TokenCredential {
  readonly #inner: TokenCredential;
  readonly #now: () => number;
  readonly #tokens = new Map<string, AccessToken>();
  readonly #pending = new Map<string, Promise<AccessToken | null>>();

  constructor(inner: TokenCredential, now: () => number = Date.now) {
    this.#inner = inner;
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
          throw error;
        },
      );
      this.#pending.set(key, pending);
    }
    return pending;
  }
}
