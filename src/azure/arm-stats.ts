// Counts of the ARM requests this process sends, for metrics and for tests that assert steady
// state costs no writes. Counted in the SDK pipeline, per HTTP attempt, so paging and retries are
// all seen.

export interface ArmStatsSnapshot {
  /** GET requests sent. */
  reads: number;
  /** PUT/PATCH/POST/DELETE requests sent. */
  writes: number;
  /** 429 answers. */
  throttled: number;
  /** 409 answers. */
  conflicts: number;
  /** Attempts repeated by the retry loop. */
  retries: number;
  /** Calls handed back as AzureRetryableError after the retries ran out. */
  retryableFailures: number;
}

export class ArmStats {
  #data: ArmStatsSnapshot = {
    reads: 0,
    writes: 0,
    throttled: 0,
    conflicts: 0,
    retries: 0,
    retryableFailures: 0,
  };

  recordResponse(method: string, status: number | undefined): void {
    if (method.toUpperCase() === 'GET' || method.toUpperCase() === 'HEAD') this.#data.reads++;
    else this.#data.writes++;
    if (status === 429) this.#data.throttled++;
    if (status === 409) this.#data.conflicts++;
  }

  recordRetry(retrying: boolean): void {
    if (retrying) this.#data.retries++;
    else this.#data.retryableFailures++;
  }

  snapshot(): ArmStatsSnapshot {
    return { ...this.#data };
  }
}

/**
 * An SDK pipeline policy (for `additionalPolicies`, position `perRetry`) feeding `stats`. Typed
 * structurally so this module does not import the SDK's pipeline package.
 */
export function armStatsPolicy(stats: ArmStats) {
  return {
    name: 'entraAccessArmStats',
    async sendRequest<Q extends { method: string }, R extends { status: number }>(
      request: Q,
      next: (request: Q) => Promise<R>,
    ): Promise<R> {
      try {
        const response = await next(request);
        stats.recordResponse(request.method, response.status);
        return response;
      } catch (error) {
        const status = (error as { statusCode?: unknown }).statusCode;
        stats.recordResponse(request.method, typeof status === 'number' ? status : undefined);
        throw error;
      }
    },
  };
}
