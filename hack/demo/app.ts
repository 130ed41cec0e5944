// The app's side, played with what the pod got and nothing else: hack/demo/pod-app.ts runs in the
// pod sandbox (test/harness/pod-sandbox.ts), which gives it the pod's env as admitted, the
// projected token a TokenRequest bound to the pod returns, and Entra at its well-known name, so
// the real @azure/identity runs its default path, instance discovery included.
import { fileURLToPath } from 'node:url';
import type * as k8s from '@kubernetes/client-node';
import type { HarnessInfo } from '../../test/harness/harness.ts';
import { type PodSandbox, startPodSandbox } from '../../test/harness/pod-sandbox.ts';

const POD_APP = fileURLToPath(new URL('./pod-app.ts', import.meta.url));

export interface App {
  sandbox: PodSandbox;
  /** The subject and audience of the projected token, to show. */
  projected: { subject: string; audience: string };
}

const claims = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

/** The app as its pod would start it. */
export async function startApp(info: HarnessInfo, core: k8s.CoreV1Api, pod: k8s.V1Pod): Promise<App> {
  const sandbox = await startPodSandbox(info, core, pod);
  const shown = await sandbox.run('cat', [sandbox.tokenFile]);
  if (shown.code !== 0)
    throw new Error(`the pod cannot read its token file ${sandbox.tokenFile}: ${shown.stderr}`);
  const jwt = claims(shown.stdout.trim());
  return { sandbox, projected: { subject: String(jwt.sub), audience: String([jwt.aud].flat()[0]) } };
}

/** Runs pod-app.ts in the pod with `args`; its one JSON line. */
async function runApp(app: App, args: string[]): Promise<Record<string, unknown>> {
  const result = await app.sandbox.run(process.execPath, [POD_APP, ...args], { timeoutMs: 60_000 });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  if (result.code !== 0 || !line.startsWith('{')) {
    throw new Error(
      `the app failed (exit ${result.code ?? result.signal}): ${result.stderr.trim().slice(-800)}`,
    );
  }
  return JSON.parse(line) as Record<string, unknown>;
}

/** The exchange: the projected token for an Entra token for the server's scope. */
export async function exchangeToken(app: App): Promise<{ oid: string; expiresOn: Date; scope: string }> {
  const answer = await runApp(app, ['token']);
  return {
    oid: String(answer.oid),
    expiresOn: new Date(String(answer.expiresOn)),
    scope: String(answer.scope),
  };
}

/** One connection, password = a token from the credential; the rows, or the server's refusal. */
export async function query(
  app: App,
  sql: string,
): Promise<{ rows: Record<string, unknown>[] } | { error: string }> {
  const answer = await runApp(app, ['query', sql]);
  return 'error' in answer
    ? { error: String(answer.error) }
    : { rows: answer.rows as Record<string, unknown>[] };
}
