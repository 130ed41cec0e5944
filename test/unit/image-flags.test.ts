// The benchmark must measure the operator as the image runs it: the same Node flags.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IMAGE_NODE_FLAGS } from '../../bench/operator.ts';

describe('the image ENTRYPOINT', () => {
  it('passes the Node flags the benchmark runs the operator with', () => {
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const line = dockerfile.split('\n').find((l) => l.startsWith('ENTRYPOINT '));
    const entrypoint = JSON.parse(line!.slice('ENTRYPOINT '.length)) as string[];
    expect(entrypoint[0]).toBe('/nodejs/bin/node');
    const script = entrypoint.indexOf('dist/src/main.js');
    expect(entrypoint.slice(1, script)).toEqual(IMAGE_NODE_FLAGS);
  });
});
