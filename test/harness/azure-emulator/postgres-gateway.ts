// The PostgreSQL front end of the emulator: what Azure Database for PostgreSQL does with an Entra
// login, on the real wire protocol. Clients connect here as they would to <server>.postgres.
// database.azure.com: TLS is required, the server asks for a cleartext password, and the password
// (an Entra access token) is validated at login (postgres-logins.ts). A login that passes is
// handed to the real PostgreSQL over its Unix socket, where pg_hba trusts local connections, and
// from then on bytes flow unchanged in both directions.
//
// Why not set the token as the role's password in PostgreSQL itself: the server loads the role's
// catalog row (password included) while matching pg_hba, before the client sends its password, so
// a token minted while connecting (what node-postgres' password callback does) would be refused.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { PostgresLogins } from './postgres-logins.ts';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3_0 = 196608;
const MAX_STARTUP_LENGTH = 10_000;
const MAX_PASSWORD_LENGTH = 65_535;

/** Reads exact byte counts from a socket; detach() hands back what was read ahead. */
class ByteReader {
  #buffer = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #closed = false;
  readonly #socket: Socket;
  readonly #onData = (chunk: Buffer): void => {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    this.#wake?.();
  };
  readonly #onEnd = (): void => {
    this.#closed = true;
    this.#wake?.();
  };

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
  }

  async read(length: number): Promise<Buffer> {
    while (this.#buffer.length < length) {
      if (this.#closed) throw new Error('client closed the connection');
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
    const out = this.#buffer.subarray(0, length);
    this.#buffer = this.#buffer.subarray(length);
    return out;
  }

  detach(): Buffer {
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.pause();
    return this.#buffer;
  }
}

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** A FATAL ErrorResponse, as PostgreSQL sends before closing a connection. */
function fatal(code: string, text: string, detail?: string): Buffer {
  const fields: Array<[string, string]> = [
    ['S', 'FATAL'],
    ['V', 'FATAL'],
    ['C', code],
    ['M', text],
  ];
  if (detail) fields.push(['D', detail]);
  const parts = fields.map(([k, v]) =>
    Buffer.concat([Buffer.from(k, 'latin1'), Buffer.from(`${v}\0`, 'utf8')]),
  );
  return message('E', Buffer.concat([...parts, Buffer.from([0])]));
}

function startupParameters(body: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  const fields = body.subarray(4).toString('utf8').split('\0');
  for (let i = 0; i + 1 < fields.length && fields[i] !== ''; i += 2) params.set(fields[i]!, fields[i + 1]!);
  return params;
}

export interface PostgresGatewayOptions {
  host: string;
  port: number;
  secureContext: SecureContext;
  /** The real server's Unix socket, e.g. <dir>/.s.PGSQL.5432. */
  upstreamSocket: string;
  logins: PostgresLogins;
}

export interface PostgresGateway {
  port: number;
  close(): Promise<void>;
}

export async function startPostgresGateway(options: PostgresGatewayOptions): Promise<PostgresGateway> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    handle(socket, options, sockets).catch((error: Error) => {
      process.stderr.write(`azure-emulator: postgres gateway: ${error.message}\n`);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

async function handle(raw: Socket, options: PostgresGatewayOptions, sockets: Set<Socket>): Promise<void> {
  let client: Socket = raw;
  let reader = new ByteReader(client);
  let tls = false;
  for (;;) {
    const length = (await reader.read(4)).readInt32BE(0);
    if (length < 8 || length > MAX_STARTUP_LENGTH) throw new Error(`bad startup packet length ${length}`);
    const body = await reader.read(length - 4);
    const code = body.readInt32BE(0);
    if (code === SSL_REQUEST && !tls) {
      reader.detach();
      raw.write('S');
      client = new TLSSocket(raw, { isServer: true, secureContext: options.secureContext });
      client.on('error', () => client.destroy());
      sockets.add(client);
      reader = new ByteReader(client);
      tls = true;
      continue;
    }
    if (code === GSSENC_REQUEST) {
      client.write('N');
      continue;
    }
    const startup = Buffer.alloc(length);
    startup.writeInt32BE(length, 0);
    body.copy(startup, 4);
    if (code === CANCEL_REQUEST) {
      // Cancel requests carry the backend's key, not credentials: pass them to the real server.
      const upstream = createConnection(options.upstreamSocket, () => upstream.end(startup));
      upstream.on('error', () => {});
      client.end();
      return;
    }
    if (code !== PROTOCOL_3_0) {
      client.end(fatal('0A000', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`));
      return;
    }
    if (!tls) {
      // Azure enforces require_secure_transport=ON by default.
      client.end(fatal('28000', 'SSL connection is required. Please specify SSL options and retry.'));
      return;
    }
    const params = startupParameters(body);
    const user = params.get('user') ?? '';
    if (!(await authenticate(client, reader, user, options.logins))) return;
    const rest = reader.detach();
    const upstream = createConnection(options.upstreamSocket);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.write(startup);
    if (rest.length > 0) upstream.write(rest);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
    return;
  }
}

/** Asks for the token and checks it; on refusal sends PostgreSQL's error and ends the connection. */
async function authenticate(
  client: Socket,
  reader: ByteReader,
  user: string,
  logins: PostgresLogins,
): Promise<boolean> {
  const refuse = (detail: string): false => {
    client.end(fatal('28P01', `password authentication failed for user "${user}"`, detail));
    return false;
  };
  // AuthenticationCleartextPassword: Azure asks for the token in clear, inside TLS.
  const request = Buffer.alloc(4);
  request.writeInt32BE(3, 0);
  client.write(message('R', request));
  const header = await reader.read(5);
  const type = header.toString('latin1', 0, 1);
  const length = header.readInt32BE(1);
  if (type !== 'p' || length < 5 || length > MAX_PASSWORD_LENGTH)
    return refuse('expected a password message');
  const password = (await reader.read(length - 4)).toString('utf8').replace(/\0$/, '');
  const decision = await logins.check(user, password);
  return decision.ok || refuse(decision.reason);
}
