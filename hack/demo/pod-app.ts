// The demo's app, run in the pod sandbox (test/harness/pod-sandbox.ts) with only what its pod got:
// the env the webhook injected next to the Deployment's PG* variables, and the projected token
// file. It is written as docs/aks-guide.md tells an app to be: the SDK's WorkloadIdentityCredential
// with no options (instance discovery and all), and a fresh token as the password of each new
// connection. Prints one JSON line.
//   node pod-app.ts token          → {"oid": …, "expiresOn": …, "scope": …}
//   node pod-app.ts query '<sql>'  → {"rows": […]} or {"error": "…"}
import { WorkloadIdentityCredential } from '@azure/identity';
import pg from 'pg';

const credential = new WorkloadIdentityCredential();
const scope = process.env.PGTOKENSCOPE ?? 'https://ossrdbms-aad.database.windows.net/.default';

const claims = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

async function main(): Promise<unknown> {
  const [command, sql] = process.argv.slice(2);
  if (command === 'token') {
    const token = await credential.getToken(scope);
    return {
      oid: claims(token.token).oid,
      expiresOn: new Date(token.expiresOnTimestamp).toISOString(),
      scope,
    };
  }
  if (command === 'query' && sql) {
    const client = new pg.Client({
      host: process.env.PGHOST,
      port: Number(process.env.PGPORT ?? 5432),
      database: process.env.PGDATABASE,
      user: process.env.PGUSER,
      ssl: { rejectUnauthorized: true },
      password: async () => (await credential.getToken(scope)).token,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      return { rows: (await client.query(sql)).rows };
    } catch (error) {
      return { error: (error as Error).message };
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw new Error('usage: pod-app.ts token | query <sql>');
}

main().then(
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
  (error: Error) => {
    process.stderr.write(`${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
