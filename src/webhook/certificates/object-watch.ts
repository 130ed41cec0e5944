// A watch on one named object that calls back on every event and restarts when the stream ends
// (client-node's Watch ends on errors and on the server's timeout). Used to notice at once what
// the minute loop would notice later: another replica's renewal, a reset caBundle.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../../observability/logger.ts';

const MAX_DELAY_MS = 30_000;

export class ObjectWatch {
  readonly #watch: k8s.Watch;
  readonly #path: string;
  readonly #name: string;
  readonly #onEvent: () => void;
  readonly #logger: Logger;
  #abort: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
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
          this.#failures = 0;
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
    if (failed) this.#failures += 1;
    const delay = failed ? Math.min(1000 * 2 ** (this.#failures - 1), MAX_DELAY_MS) : 200;
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
