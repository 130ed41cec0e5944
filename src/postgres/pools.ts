// Connection pools to Entra-authenticated PostgreSQL servers: one pg.Pool per (host, port,
// database, user), whose password is a fresh Entra token fetched for every new connection (Entra
// checks the token at login only, so open connections outlive it and new ones need a current one).
// A login refused with 28P01 means the token was not accepted (rotated, revoked, expired early):
// the token source is told, so it can drop its cached token, and the next connection asks again.
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { SslMode } from '../api/types.ts';

export interface PoolTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  sslMode: SslMode;
  /** PEM CA bundle for `verify-full` and `verify-ca`; absent means the system trust store. */
  caPem?: string | undefined;
}

export interface TokenSource {
  /** A current Entra access token for the server's scope. */
  getToken(): Promise<string>;
  /** The server refused a token (28P01): forget it so getToken fetches a new one. */
  onAuthFailure?(error: Error): void;
}

export interface PoolRegistryOptions {
  /** Connections per pool; the operator runs few statements, so a handful is enough. */
  max?: number;
  idleTimeoutMillis?: number;
  connectionTimeoutMillis?: number;
  applicationName?: string;
  /** An idle connection failed (server restart, network): pg.Pool would crash the process without a listener. */
  onPoolError?(error: Error, key: string): void;
}

const DEFAULTS = {
  max: 4,
  idleTimeoutMillis: 30_000,
  connectionTimeoutMillis: 15_000,
  applicationName: 'entra-access',
};

export function poolKey(target: Pick<PoolTarget, 'host' | 'port' | 'database' | 'user'>): string {
  return `${target.host}:${target.port}:${target.database}:${target.user}`;
}

/**
 * Node TLS options for an sslMode, as libpq reads it: `verify-full` checks the chain and the host
 * name (node checks the name by default), `verify-ca` the chain only, `require` nothing (it
 * encrypts without checking who answers).
 */
export function tlsOptions(target: Pick<PoolTarget, 'sslMode' | 'caPem'>): ConnectionOptions {
  if (target.sslMode === 'require') return { rejectUnauthorized: false };
  const chain: ConnectionOptions = target.caPem
    ? { rejectUnauthorized: true, ca: target.caPem }
    : { rejectUnauthorized: true };
  // The chain is still checked (rejectUnauthorized); only the name check is skipped.
  if (target.sslMode === 'verify-ca') return { ...chain, checkServerIdentity: () => undefined };
  return chain;
}

export function isAuthFailure(error: unknown): boolean {
  return (error as { code?: unknown })?.code === '28P01';
}

interface Entry {
  pool: pg.Pool;
  /** What the pool was built with; a change (rotated CA, new sslMode) replaces the pool. */
  settings: string;
  /** The latest token source: a reconcile may pass a new one for the same server. */
  tokens: TokenSource;
}

/**
 * A pg.Client that reports refused logins. The pool connects through this class, so every new
 * connection, whoever asked for it, is covered.
 */
function reportingClient(onRefused: (error: Error) => void): typeof pg.Client {
  return class TokenLoginClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error) => void): void;
    override connect(callback?: (err: Error) => void): Promise<pg.Client> | undefined {
      const report = (error: Error | undefined): void => {
        if (error && isAuthFailure(error)) onRefused(error);
      };
      if (callback) {
        super.connect((error: Error) => {
          report(error);
          callback(error);
        });
        return undefined;
      }
      return super.connect().catch((error: Error) => {
        report(error);
        throw error;
      });
    }
  };
}

export class PoolRegistry {
  readonly #options: typeof DEFAULTS & Pick<PoolRegistryOptions, 'onPoolError'>;
  readonly #entries = new Map<string, Entry>();

  constructor(options: PoolRegistryOptions = {}) {
    this.#options = { ...DEFAULTS, ...options };
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The pool for `target`, created on first use. Another database of one server is another pool. */
  get(target: PoolTarget, tokens: TokenSource): pg.Pool {
    const key = poolKey(target);
    const settings = JSON.stringify([target.sslMode, target.caPem ?? null]);
    const existing = this.#entries.get(key);
    if (existing && existing.settings === settings) {
      existing.tokens = tokens;
      return existing.pool;
    }
    if (existing) this.#retire(key, existing);
    const entry: Entry = { pool: undefined as unknown as pg.Pool, settings, tokens };
    entry.pool = new pg.Pool({
      host: target.host,
      port: target.port,
      database: target.database,
      user: target.user,
      // Called by node-postgres for every new connection.
      password: () => entry.tokens.getToken(),
      ssl: tlsOptions(target),
      max: this.#options.max,
      idleTimeoutMillis: this.#options.idleTimeoutMillis,
      connectionTimeoutMillis: this.#options.connectionTimeoutMillis,
      application_name: this.#options.applicationName,
      Client: reportingClient((error) => entry.tokens.onAuthFailure?.(error)),
    });
    entry.pool.on('error', (error) => this.#options.onPoolError?.(error, key));
    this.#entries.set(key, entry);
    return entry.pool;
  }

  /** Ends the pools of one server (every database and user), e.g. when its resource is deleted. */
  async endServer(host: string, port: number): Promise<void> {
    const prefix = `${host}:${port}:`;
    const ending = [...this.#entries].filter(([key]) => key.startsWith(prefix));
    for (const [key] of ending) this.#entries.delete(key);
    await Promise.all(ending.map(([, entry]) => entry.pool.end()));
  }

  /** Ends every pool; in-flight queries finish first. */
  async end(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(entries.map((entry) => entry.pool.end()));
  }

  #retire(key: string, entry: Entry): void {
    this.#entries.delete(key);
    // Checked-out clients finish their work; the old pool closes once they are released.
    entry.pool.end().catch((error: Error) => this.#options.onPoolError?.(error, key));
  }
}
