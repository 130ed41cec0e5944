// The walk down an error's `cause` chain (error → error.cause → …). Code that wraps an error to
// add context passes the original as `cause`, so what the thrower knew (a Retry-After, a reason,
// a code) is somewhere down the chain, not necessarily on the error caught. Every reader of such
// facts walks the chain here, the same way: objects only, and each at most once, because a chain
// is plain data anyone can build, cycles included (`e.cause = e`).

/** `error`, its cause, that one's cause, …: the objects of the chain, each once, in order. */
export function* causeChain(error: unknown): Generator<object, void, undefined> {
  const seen = new Set<object>();
  let current = error;
  // A primitive ends the chain: a thrown string has no cause, and it cannot carry fields either.
  while (current !== null && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    yield current;
    current = (current as { cause?: unknown }).cause;
  }
}

/** The first object of the chain that `predicate` accepts, or undefined. */
export function findInCauseChain<T extends object>(
  error: unknown,
  predicate: (candidate: object) => candidate is T,
): T | undefined;
export function findInCauseChain(
  error: unknown,
  predicate: (candidate: object) => boolean,
): object | undefined;
export function findInCauseChain(
  error: unknown,
  predicate: (candidate: object) => boolean,
): object | undefined {
  for (const candidate of causeChain(error)) if (predicate(candidate)) return candidate;
  return undefined;
}

/** Whether any object of the chain matches `predicate`. */
export function someInCauseChain(error: unknown, predicate: (candidate: object) => boolean): boolean {
  return findInCauseChain(error, predicate) !== undefined;
}
