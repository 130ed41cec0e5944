// The reader of docs/aks-guide.md's marked snippets (test/clients/snippets.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AKS_GUIDE, snippetsOf } from '../../../test/clients/snippets.ts';

describe('snippetsOf', () => {
  it('takes the fenced block right after each marker, as written', () => {
    const markdown = [
      'Intro.',
      '<!-- snippet: one -->',
      '```js',
      "const a = '```';",
      'console.log(a);',
      '```',
      '',
      '```sh',
      'echo unmarked',
      '```',
      '<!-- snippet: two -->',
      '```python',
      'print("x")',
      '```',
    ].join('\n');
    const snippets = snippetsOf(markdown);
    expect([...snippets.keys()]).toEqual(['one', 'two']);
    expect(snippets.get('one')).toEqual({
      name: 'one',
      language: 'js',
      code: "const a = '```';\nconsole.log(a);\n",
    });
    expect(snippets.get('two')?.code).toBe('print("x")\n');
  });

  it('ignores a marker that is not right before a fence, and refuses a name marked twice', () => {
    expect(snippetsOf('<!-- snippet: loose -->\n\n```js\nx\n```\n').size).toBe(0);
    expect(() =>
      snippetsOf('<!-- snippet: a -->\n```js\nx\n```\n<!-- snippet: a -->\n```js\ny\n```\n'),
    ).toThrow(/marked twice/);
  });

  it('finds the Node.js snippet in docs/aks-guide.md', () => {
    const snippets = snippetsOf(readFileSync(AKS_GUIDE, 'utf8'));
    expect(snippets.get('node')?.language).toBe('js');
    expect(snippets.get('node')?.code).toMatch(/new WorkloadIdentityCredential\(\)/);
  });
});
