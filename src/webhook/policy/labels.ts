// Kubernetes label key and value syntax (the rules of apimachinery's IsQualifiedName and
// IsValidLabelValue), and the `k=v,k2=v2` list format of --extra-pod-labels and the namespace
// annotation `entra-access.io/extra-pod-labels`.

const NAME_MAX = 63;
const PREFIX_MAX = 253;
const VALUE_MAX = 63;
/** Alphanumerics, `-`, `_`, `.`; starts and ends alphanumeric. */
const NAME_PATTERN = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
/** DNS-1123 subdomain: lowercase alphanumeric labels joined by `.`, each may contain `-` inside. */
const DNS1123_SUBDOMAIN_PATTERN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

const NAME_RULE =
  "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character";

function checkName(name: string, what: string, max: number): string | undefined {
  if (name === '') return `${what} must not be empty`;
  if (name.length > max) return `${what} must be at most ${max} characters (has ${name.length})`;
  if (!NAME_PATTERN.test(name)) return `${what} must consist of ${NAME_RULE}`;
  return undefined;
}

/** Why `key` is not a valid label key, or undefined when it is: `[prefix/]name`. */
export function labelKeyError(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return `key "${key}" may contain at most one '/'`;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix === '') return `key "${key}" has an empty prefix before '/'`;
    if (prefix.length > PREFIX_MAX) {
      return `key "${key}" has a prefix longer than ${PREFIX_MAX} characters (has ${prefix.length})`;
    }
    if (!DNS1123_SUBDOMAIN_PATTERN.test(prefix)) {
      return `key "${key}" has a prefix that is not a DNS subdomain (lowercase alphanumeric characters, '-' and '.', starting and ending with an alphanumeric character)`;
    }
  }
  const nameError = checkName(parts[parts.length - 1]!, 'name part', NAME_MAX);
  return nameError === undefined ? undefined : `key "${key}": ${nameError}`;
}

/** Why `value` is not a valid label value, or undefined when it is. The empty value is valid. */
export function labelValueError(value: string): string | undefined {
  if (value === '') return undefined;
  const error = checkName(value, 'value', VALUE_MAX);
  return error === undefined ? undefined : `value "${value}": ${error}`;
}

export function isValidLabelKey(key: string): boolean {
  return labelKeyError(key) === undefined;
}

export function isValidLabelValue(value: string): boolean {
  return labelValueError(value) === undefined;
}

export interface LabelList {
  /** The valid entries, in the order first written. */
  labels: Record<string, string>;
  /** One message per rejected entry, quoting the entry and saying why. */
  errors: string[];
}

/**
 * Parses `k=v,k2=v2`. Whitespace around entries, keys and values is ignored, and so are empty
 * entries (`a=1,,b=2`, a trailing comma). The value is everything after the first `=` and may be
 * empty. Invalid entries are left out and reported. A key given twice with the same value is
 * harmless; a key given twice with different values is ambiguous, so it is reported and left
 * out entirely (neither value is applied, rather than guessing which one was meant).
 */
export function parseLabelList(text: string): LabelList {
  const values = new Map<string, string>();
  const conflicting = new Set<string>();
  const errors: string[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq < 0) {
      errors.push(`entry "${entry}": expected key=value`);
      continue;
    }
    const key = entry.slice(0, eq).trim();
    const value = entry.slice(eq + 1).trim();
    const problem = labelKeyError(key) ?? labelValueError(value);
    if (problem !== undefined) {
      errors.push(`entry "${entry}": ${problem}`);
      continue;
    }
    const earlier = values.get(key);
    if (earlier !== undefined && earlier !== value && !conflicting.has(key)) {
      conflicting.add(key);
      errors.push(`entry "${entry}": key "${key}" is also given as "${earlier}"; neither value is applied`);
      continue;
    }
    if (!conflicting.has(key)) values.set(key, value);
  }
  for (const key of conflicting) values.delete(key);
  return { labels: Object.fromEntries(values), errors };
}
