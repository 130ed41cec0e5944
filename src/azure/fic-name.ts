// What a federated identity credential for a service account is called and what it trusts. Pure.
//
// The name must be deterministic (a replayed reconcile finds the FIC it made), valid for ARM
// (`^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$`) and distinct for distinct (cluster, namespace, service
// account) triples, because one identity may be federated to service accounts of several
// clusters. It stays readable where it can: `<cluster>_<namespace>_<serviceAccount>`. `_` separates
// the parts because namespaces and service-account names can never contain it, so that form maps
// back to exactly one triple. Whenever it cannot (a character had to be replaced, the cluster name
// holds `_`, or the result is too long) the name becomes a shortened readable prefix plus a hash of
// the exact triple, so two inputs sharing a truncated or sanitised prefix still get different names.
import { createHash } from 'node:crypto';

/** The audience Entra requires in a service-account token exchanged by workload identity. */
export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

export const FIC_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}$/;
const MAX_LENGTH = 120;
/** 12 hex digits = 48 bits: a collision among even a million FIC names is about 1 in 500. */
const HASH_LENGTH = 12;

export function ficSubject(namespace: string, serviceAccount: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccount}`;
}

function hashOf(parts: string[]): string {
  // JSON keeps the triple unambiguous (`a,b` + `c` never hashes like `a` + `b,c`).
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, HASH_LENGTH);
}

/** Characters ARM does not allow in a FIC name become `-`. */
function sanitise(part: string): string {
  return part.replace(/[^a-zA-Z0-9-]/g, '-');
}

export function ficName(clusterName: string, namespace: string, serviceAccount: string): string {
  if (namespace === '' || serviceAccount === '') {
    throw new Error('a federated credential name needs a namespace and a service account name');
  }
  const parts = clusterName === '' ? [namespace, serviceAccount] : [clusterName, namespace, serviceAccount];
  const readable = parts.map(sanitise).join('_');
  const lossless = parts.every((p) => sanitise(p) === p) && /^[a-zA-Z0-9]/.test(readable);
  if (lossless && readable.length <= MAX_LENGTH) return readable;

  const suffix = `-${hashOf(parts)}`;
  // Leading separators are not allowed; trailing ones before the hash would only look odd.
  const prefix = readable
    .replace(/^[^a-zA-Z0-9]+/, '')
    .slice(0, MAX_LENGTH - suffix.length)
    .replace(/[-_]+$/, '');
  const name = prefix === '' ? `fic${suffix}` : `${prefix}${suffix}`;
  return name;
}
