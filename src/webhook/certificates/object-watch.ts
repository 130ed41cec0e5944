// A watch on one named object that calls back on every event and restarts when the stream ends
// (client-node's Watch ends on errors and on the server's timeout). Used to notice at once what
// the minute loop would notice later: another replica's renewal, a reset caBundle.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../../observability/logger.ts';
import { BackoffCounter } from '../../util/backoff.ts';

/** After a failure: 1 s, doubled per failure in a row, up to 30 s. */
const FAILURE_BACKOFF = { baseDelayMs: 1000, maxDelayMs: 30_000 };
/** After the server ended the stream normally (its timeout): reconnect almost at once. */
const RECONNECT_DELAY_MS = 200;

export class ObjectWatch {
  readonly #watch: k8s.Watch;
  readonly #path: string;
  readonly #name: string;
  readonly #onEvent: () => void;
  readonly #logger: Logger;
  #abort: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Failures since the last event, which proves the watch works. */
  readonly #failures = new BackoffCounter(FAILURE_BACKOFF);
  #stopped = true;

  constructor(kubeConfig: k8s.KubeConfig, path: string, name: string, onEvent: () => void, logger: Logger) {
    this.#watch = new k8s.Watch(kubeConfig);
    this.#path = path;
    this.#name = name;
    this.#onEvent = onEvent;
    this.#logger = logger;
  }

  start(): void {
    this.#stopped = false;
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort?.abort();
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    try {
      this.#abort = await this.#watch.watch(
        this.#path,
        { fieldSelector: `metadata.name=${this.#name}` },
        () => {
          this.#failures.reset();
          this.#onEvent();
        },
        (error: unknown) => this.#again(error),
      );
    } catch (error) {
      this.#again(error);
    }
  }

  #again(error: unknown): void {
    if (this.#stopped) return;
    const failed = error !== null && error !== undefined && (error as Error).name !== 'AbortError';
    const delay = failed ? this.#failures.next() : RECONNECT_DELAY_MS;
    if (failed) {
      this.#logger.debug(
        { path: this.#path, name: this.#name, err: (error as Error).message, retryInMs: delay },
        'watch ended; restarting',
      );
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#run(), delay);
    this.#timer.unref();
  }
}
