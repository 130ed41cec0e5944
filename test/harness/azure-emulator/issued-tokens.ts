// A record of every secret the emulator handed out or was handed: the access tokens it issued
// (ARM and PostgreSQL scopes alike) and the client assertions (service-account JWTs) it received,
// accepted or not. Tests that prove no secret leaks (test/reliability/secret-leaks.test.ts) scan what
// the code under test produced for these values. Bounded, so a long benchmark cannot grow it
// without limit: past the cap the oldest entries go and `dropped` counts them.
// `POST /_emulator/reset` leaves it alone (a scan wants every token of the run, whoever reset the
// world meanwhile); `DELETE /_emulator/issued-tokens` clears it.

export interface IssuedAccessToken {
  token: string;
  /** The token's `aud`, e.g. `https://management.azure.com/`. */
  audience: string;
  /** The scope asked for, e.g. `https://ossrdbms-aad.database.windows.net/.default`. */
  scope: string;
  clientId: string;
  /** ISO time of issue. */
  issuedAt: string;
}

export interface ReceivedClientAssertion {
  assertion: string;
  clientId: string;
  /** `success` or the refusal, e.g. `AADSTS70021`, `fault-500`. */
  outcome: string;
  receivedAt: string;
}

export interface IssuedTokensSnapshot {
  accessTokens: IssuedAccessToken[];
  clientAssertions: ReceivedClientAssertion[];
  /** Entries forgotten because the record was full (oldest first). */
  dropped: { accessTokens: number; clientAssertions: number };
}

export const DEFAULT_ISSUED_TOKENS_CAPACITY = 20_000;

export class IssuedTokens {
  readonly #capacity: number;
  #accessTokens: IssuedAccessToken[] = [];
  #clientAssertions: ReceivedClientAssertion[] = [];
  #dropped = { accessTokens: 0, clientAssertions: 0 };

  constructor(capacity = DEFAULT_ISSUED_TOKENS_CAPACITY) {
    this.#capacity = Math.max(1, capacity);
  }

  recordAccessToken(entry: IssuedAccessToken): void {
    this.#accessTokens.push(entry);
    if (this.#accessTokens.length > this.#capacity) {
      this.#accessTokens.shift();
      this.#dropped.accessTokens++;
    }
  }

  recordClientAssertion(entry: ReceivedClientAssertion): void {
    this.#clientAssertions.push(entry);
    if (this.#clientAssertions.length > this.#capacity) {
      this.#clientAssertions.shift();
      this.#dropped.clientAssertions++;
    }
  }

  snapshot(): IssuedTokensSnapshot {
    return {
      accessTokens: this.#accessTokens.map((e) => ({ ...e })),
      clientAssertions: this.#clientAssertions.map((e) => ({ ...e })),
      dropped: { ...this.#dropped },
    };
  }

  clear(): void {
    this.#accessTokens = [];
    this.#clientAssertions = [];
    this.#dropped = { accessTokens: 0, clientAssertions: 0 };
  }
}
