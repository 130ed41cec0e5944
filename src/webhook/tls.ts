// The webhook's serving certificate: tls.crt and tls.key in --cert-dir, reloaded without a
// restart when they change (a renewed Secret volume, cert-manager, or --cert-mode=self).
// Changes are noticed by fs.watch and, because watches can miss Secret-volume symlink swaps, by
// a periodic content check as well.
import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from '../observability/logger.ts';

export interface ServingCertificate {
  cert: Buffer;
  key: Buffer;
}

export class CertificateWatcher {
  readonly #dir: string;
  readonly #logger: Logger;
  readonly #listeners: Array<(certificate: ServingCertificate) => void> = [];
  #current: ServingCertificate | undefined;
  #fingerprint = '';
  #timer: NodeJS.Timeout | undefined;
  #watcher: FSWatcher | undefined;
  #checking: Promise<void> | undefined;

  constructor(dir: string, logger: Logger) {
    this.#dir = dir;
    this.#logger = logger;
  }

  get loaded(): boolean {
    return this.#current !== undefined;
  }

  get current(): ServingCertificate | undefined {
    return this.#current;
  }

  onChange(listener: (certificate: ServingCertificate) => void): void {
    this.#listeners.push(listener);
  }

  /** Starts watching; resolves once a valid pair has been loaded (polling until it exists). */
  async start(pollMs = 2000): Promise<ServingCertificate> {
    try {
      this.#watcher = watch(this.#dir, () => void this.check());
      this.#watcher.on('error', () => {});
    } catch {
      // the directory may not exist yet; polling covers it
    }
    this.#timer = setInterval(() => void this.check(), pollMs);
    this.#timer.unref();
    for (;;) {
      await this.check();
      if (this.#current) return this.#current;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, 500)));
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#watcher?.close();
  }

  /** Reads the pair; swaps it in if it changed and is a valid matching pair. */
  check(): Promise<void> {
    this.#checking ??= this.#load().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #load(retried = false): Promise<void> {
    let cert: Buffer;
    let key: Buffer;
    try {
      // A kubelet Secret volume, and --cert-mode=self, switch pairs by repointing the `..data`
      // symlink: reading both files through one resolution of it never mixes two pairs.
      const read = (base: string) =>
        Promise.all([readFile(join(base, 'tls.crt')), readFile(join(base, 'tls.key'))]);
      const data = await realpath(join(this.#dir, '..data')).catch(() => undefined);
      [cert, key] = await (data ? read(data).catch(() => read(this.#dir)) : read(this.#dir));
    } catch {
      return; // not there (yet), or mid-swap: keep serving the current pair
    }
    const fingerprint = createHash('sha256').update(cert).update(key).digest('hex');
    if (fingerprint === this.#fingerprint) return;
    try {
      createSecureContext({ cert, key }); // throws if the key does not match the certificate
    } catch (error) {
      // A writer that replaces the two files one after the other was caught in between: the
      // second file follows within moments, so look once more before calling the pair invalid.
      if (!retried) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        return this.#load(true);
      }
      this.#logger.warn(
        { dir: this.#dir, err: (error as Error).message },
        'ignoring an invalid serving certificate',
      );
      return;
    }
    const first = this.#current === undefined;
    this.#fingerprint = fingerprint;
    this.#current = { cert, key };
    this.#logger.info(
      { dir: this.#dir },
      first ? 'serving certificate loaded' : 'serving certificate reloaded',
    );
    for (const listener of this.#listeners) listener(this.#current);
  }
}

export function secureContextOf(certificate: ServingCertificate): SecureContext {
  return createSecureContext(certificate);
}
