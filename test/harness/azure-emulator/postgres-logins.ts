// Decides whether an Entra access token may log in to PostgreSQL as a role, the way Azure
// Database for PostgreSQL does at login: the token must be one Entra (here: this emulator) signed,
// unexpired, for a PostgreSQL audience, not revoked, and its `oid` must be the principal mapped to
// that role (pgaadauth_standin.principals, kept by the harness's pgaadauth stand-ins).
// Every unexpired token stays valid, as with Entra; POST /_emulator/revoke ends the ones issued so far.
import { decodeJwt } from 'jose';
import pg from 'pg';
import type { TokenIssuer } from './tokens.ts';

/** Scopes of Azure Database for PostgreSQL in the public, US Government and China clouds. */
export const POSTGRES_SCOPES: ReadonlySet<string> = new Set([
  'https://ossrdbms-aad.database.windows.net/.default',
  'https://ossrdbms-aad.database.usgovcloudapi.net/.default',
  'https://ossrdbms-aad.database.chinacloudapi.cn/.default',
]);
const POSTGRES_AUDIENCES = [...POSTGRES_SCOPES].map((scope) => scope.replace(/\/\.default$/, ''));

const ROLE_FOR_PRINCIPAL = `
  SELECT p.rolname FROM pgaadauth_standin.principals p
  JOIN pg_roles r ON r.rolname = p.rolname
  WHERE p.object_id = $1`;

export type LoginDecision = { ok: true } | { ok: false; reason: string };

export class PostgresLogins {
  readonly #pool: pg.Pool;
  readonly #tokens: TokenIssuer;
  readonly #issued = new Map<string, Set<string>>();
  readonly #revoked = new Set<string>();

  constructor(adminUrl: string, tokens: TokenIssuer) {
    this.#tokens = tokens;
    this.#pool = new pg.Pool({ connectionString: adminUrl, max: 4, idleTimeoutMillis: 5000 });
    // An idle client losing its connection (server restart in a test) must not crash the emulator.
    this.#pool.on('error', (error) =>
      process.stderr.write(`azure-emulator: postgres pool: ${error.message}\n`),
    );
  }

  /** The role mapped to an Entra object id, if any. */
  async roleFor(principalId: string): Promise<string | undefined> {
    const result = await this.#pool.query<{ rolname: string }>(ROLE_FOR_PRINCIPAL, [principalId]);
    return result.rows[0]?.rolname;
  }

  /** Remembers a database token so that a later revoke can end it. */
  remember(principalId: string, token: string): void {
    const uti = String(decodeJwt(token).uti);
    const set = this.#issued.get(principalId) ?? new Set<string>();
    set.add(uti);
    this.#issued.set(principalId, set);
  }

  /** Ends every token issued so far to the principal (as a credential rotation would). */
  async revoke(principalId: string): Promise<string | undefined> {
    for (const uti of this.#issued.get(principalId) ?? []) this.#revoked.add(uti);
    this.#issued.delete(principalId);
    return this.roleFor(principalId);
  }

  async check(role: string, token: string): Promise<LoginDecision> {
    let claims: Awaited<ReturnType<TokenIssuer['verify']>>;
    try {
      claims = await this.#tokens.verify(token, POSTGRES_AUDIENCES);
    } catch (error) {
      return {
        ok: false,
        reason: `the password is not a valid Entra token for PostgreSQL: ${(error as Error).message}`,
      };
    }
    if (this.#revoked.has(String(claims.uti))) return { ok: false, reason: 'the token was revoked' };
    const mapped = await this.roleFor(String(claims.oid));
    if (mapped !== role) {
      return {
        ok: false,
        reason: `the token's object id ${claims.oid} is ${mapped ? `mapped to role "${mapped}"` : 'not mapped to any role'}`,
      };
    }
    return { ok: true };
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
